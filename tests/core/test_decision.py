"""The decision rules of DESIGN.md, each as a user sees it: exit code and JSON decision."""

from __future__ import annotations

import pytest

REPORT = "--promotion-report=decision.json"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--env=staging", REPORT, *args)


def test_all_gates_pass_promotes(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        def test_coverage(gate):
            gate.measure(72.5, min=60, unit="%")
        """
    )
    result = run(pytester)
    assert result.ret == 0
    report = read_report()
    assert report["decision"] == "promote"
    assert report["reasons"] == []
    gate = report["gates"][0]
    assert (gate["outcome"], gate["measured"], gate["threshold"]) == ("passed", "72.5 %", ">= 60 %")
    result.stdout.fnmatch_lines(
        ["*test_coverage*72.5 %*>= 60 %*PASS", "decision: PROMOTE -> staging"]
    )


def test_measure_below_minimum_blocks_with_one_line(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        @pytest.mark.gate(name="coverage")
        def test_coverage(gate):
            gate.measure(57.2, min=60, unit="%")
        """
    )
    result = run(pytester)
    assert result.ret == 1
    report = read_report()
    assert report["decision"] == "block"
    assert report["reasons"] == [
        "gate coverage (test_measure_below_minimum_blocks_with_one_line.py::test_coverage) "
        "failed: coverage: 57.2 % < 60 %"
    ]
    result.stdout.fnmatch_lines(["coverage*57.2 %*>= 60 %*FAIL", "decision: BLOCK -> staging"])


def test_rollback_trigger_failure_decides_rollback(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.staging
        @pytest.mark.gate(name="health", trigger="rollback")
        def test_health():
            assert False, "health endpoint answered 503"
        @pytest.mark.dev
        def test_lint():
            assert False, "lint failed"
        """
    )
    result = run(pytester)
    assert result.ret == 1
    report = read_report()
    assert report["decision"] == "rollback"
    assert report["reasons"][0].startswith("gate health (")
    assert "health endpoint answered 503" in report["reasons"][0]
    assert len(report["reasons"]) == 2
    result.stdout.fnmatch_lines(["health*ROLLBACK", "decision: ROLLBACK -> staging"])


def test_runtime_rollback_trigger_from_gate_fixture(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        def test_security(gate):
            gate.trigger_rollback()
            gate.measure(1, max=0)
        """
    )
    run(pytester)
    assert read_report()["decision"] == "rollback"


def test_fixture_error_blocks_even_for_rollback_gates(
    pytester: pytest.Pytester, read_report
) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.fixture
        def client():
            raise RuntimeError("cannot build client")
        @pytest.mark.dev
        @pytest.mark.gate(trigger="rollback")
        def test_health(client):
            pass
        """
    )
    result = run(pytester)
    assert result.ret == 1
    report = read_report()
    assert report["decision"] == "block"
    assert "errored (no measurement)" in report["reasons"][0]
    assert "cannot build client" in report["reasons"][0]


def test_collection_error_blocks(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        test_good="import pytest\n@pytest.mark.dev\ndef test_ok(): pass\n",
        test_broken="import nonexistent_module_xyz\n",
    )
    result = run(pytester)
    assert result.ret != 0
    report = read_report()
    assert report["decision"] == "block"
    assert any("collection error: test_broken.py" in r for r in report["reasons"])


@pytest.mark.parametrize(
    ("env", "decision", "ret"), [("staging", "promote", 0), ("prod", "block", 1)]
)
def test_skip_forbidden_in_prod_only(
    pytester: pytest.Pytester, read_report, env: str, decision: str, ret: int
) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        def test_ok(): pass
        @pytest.mark.dev
        def test_skipped():
            pytest.skip("no scanner here")
        """
    )
    result = pytester.runpytest("--promotion-config=none", f"--env={env}", REPORT)
    assert result.ret == ret
    report = read_report()
    assert report["decision"] == decision
    if env == "prod":
        assert report["reasons"] == [
            "gate test_skip_forbidden_in_prod_only.py::test_skipped was skipped, "
            "and prod forbids skips: no scanner here"
        ]
    else:
        assert report["warnings"] == [
            "gate test_skip_forbidden_in_prod_only.py::test_skipped was skipped: no scanner here"
        ]


def test_allow_skips_can_be_set_per_environment(pytester: pytest.Pytester, read_report) -> None:
    pytester.makefile(".toml", promotion="[environments.staging]\nallow_skips = false\n")
    pytester.makepyfile(
        "import pytest\n@pytest.mark.dev\ndef test_s():\n    pytest.skip('later')\n"
    )
    assert run(pytester).ret == 1
    assert read_report()["decision"] == "block"


def test_xfail_gate_cannot_vouch(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        @pytest.mark.xfail(reason="flaky")
        def test_x():
            assert False
        """
    )
    result = run(pytester)
    assert result.ret == 1
    assert "marked xfail" in read_report()["reasons"][0]


def test_conftest_rewriting_exit_status_cannot_promote(
    pytester: pytest.Pytester, read_report
) -> None:
    pytester.makeconftest(
        """
        import pytest
        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(session, exitstatus):
            session.exitstatus = 0
        """
    )
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_f():\n    assert False\n")
    result = pytester.runpytest_subprocess("--env=staging", REPORT, "--junitxml=gate.xml")
    assert result.ret == 1
    assert read_report()["decision"] == "block"
    assert 'name="promotion.decision" value="block"' in (pytester.path / "gate.xml").read_text()


def test_maxfail_leaves_gates_not_run_and_blocks(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        def test_a(): assert False
        @pytest.mark.dev
        def test_b(): pass
        """
    )
    run(pytester, "-x")
    reasons = read_report()["reasons"]
    assert any("test_b did not run" in r for r in reasons)


def test_internal_error_in_a_hook_blocks(pytester: pytest.Pytester, read_report) -> None:
    pytester.makeconftest(
        """
        def pytest_runtest_logfinish(nodeid, location):
            raise RuntimeError("boom in a hook")
        """
    )
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_ok(): pass\n")
    result = pytester.runpytest_subprocess("--env=staging", REPORT)
    assert result.ret != 0
    report = read_report()
    assert report["decision"] == "block"


def test_another_plugin_failing_the_session_blocks(pytester: pytest.Pytester, read_report) -> None:
    # Like pytest-cov's --cov-fail-under: the session fails outside any gate.
    pytester.makeconftest(
        """
        import pytest
        @pytest.hookimpl(wrapper=True)
        def pytest_runtestloop(session):
            result = yield
            session.testsfailed += 1
            return result
        """
    )
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_ok(): pass\n")
    result = run(pytester)
    assert result.ret == 1
    assert read_report()["decision"] == "block"
    assert "outside the gates" in read_report()["reasons"][0]


def test_collect_only_never_promotes(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_ok(): pass\n")
    result = run(pytester, "--collect-only")
    assert result.ret != 0
    assert read_report()["decision"] == "block"
