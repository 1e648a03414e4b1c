"""Ways a run used to promote, or exit 0, without vouching for every gate: a module skipped
at collection, gates dropped after the plugin selected them, pytest.exit before the
session, a stale report after a usage error, a report that cannot be written, waived gates
failing twice; and secrets in captured output, skip reasons and collection errors."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from tests.reports import RunAndParse

GATES = """
import pytest
pytestmark = pytest.mark.dev

def test_ok(): pass

def test_security(): assert False, "critical finding"
"""


# -- 1. a module skipped at collection -----------------------------------------------------
@pytest.mark.parametrize(("env", "ret"), [("prod", 1), ("staging", 0)])
def test_module_skipped_at_collection_is_a_skipped_gate(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, env: str, ret: int
) -> None:
    pytester.makepyfile(
        test_a="import pytest\npytestmark = pytest.mark.dev\ndef test_ok(): pass\n",
        test_b="""
            import pytest
            pytestmark = pytest.mark.dev
            pytest.skip("security scanner not installed", allow_module_level=True)
            def test_security_gate(): assert False
            """,
        test_c="""
            import pytest
            pytestmark = pytest.mark.dev
            pytest.importorskip("nonexistent_scanner_lib_xyz")
            def test_other_gate(): assert False
            """,
    )
    result, report = run_and_parse("--promotion-config=none", f"--env={env}")
    assert result.ret == ret
    missing = "could not import 'nonexistent_scanner_lib_xyz': No module named 'nonexistent_scanner_lib_xyz'"
    if env == "prod":
        assert report["decision"] == "block"
        assert report["reasons"] == [
            "test_b.py was skipped at collection, and prod forbids skips: "
            "security scanner not installed",
            f"test_c.py was skipped at collection, and prod forbids skips: {missing}",
        ]
        result.stdout.fnmatch_lines(["decision: BLOCK -> prod"])
    else:
        assert report["decision"] == "promote"
        assert report["warnings"] == [
            "test_b.py was skipped at collection: security scanner not installed",
            f"test_c.py was skipped at collection: {missing}",
        ]
        result.stdout.fnmatch_lines(
            ["warning: test_b.py was skipped at collection: security scanner not installed"]
        )


# -- 2. gates dropped after the plugin selected them ---------------------------------------
def test_conftest_dropping_a_gate_blocks_prod_and_warns_staging(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(config, items):
            items[:] = [i for i in items if "security" not in i.name]  # a "quarantine" list
        """
    )
    pytester.makepyfile(test_g=GATES)
    result, report = run_and_parse("--promotion-config=none", "--env=prod")
    assert result.ret == 1
    assert report["reasons"] == [
        "1 gate of prod was deselected (-k, -m, --deselect, --lf, --sw or a conftest): "
        "a partial run cannot promote prod (e.g. test_g.py::test_security)"
    ]
    result, report = run_and_parse("--promotion-config=none", "--env=staging")
    assert result.ret == 0
    assert report["decision"] == "promote"
    assert report["warnings"] == [
        "1 gate of staging was deselected (-k, -m, --deselect, --lf, --sw or a conftest): "
        "this run vouches only for the rest (e.g. test_g.py::test_security)"
    ]


def test_a_tryfirst_conftest_in_a_sub_directory_cannot_drop_a_gate_unseen(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    # Registered after the plugin, a tryfirst hook would run before a tryfirst plugin hook.
    pytester.mkpydir("sub")
    Path(pytester.path, "sub", "conftest.py").write_text(
        "import pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    items[:] = [i for i in items if 'security' not in i.name]\n"
    )
    Path(pytester.path, "sub", "test_g.py").write_text(textwrap.dedent(GATES))
    result, report = run_and_parse("--promotion-config=none", "--env=prod")
    assert result.ret == 1
    assert report["reasons"] == [
        "1 gate of prod was deselected (-k, -m, --deselect, --lf, --sw or a conftest): "
        "a partial run cannot promote prod (e.g. sub/test_g.py::test_security)"
    ]


@pytest.mark.parametrize("where", [".", "sub"])
def test_a_conftest_hook_wrapper_cannot_drop_a_gate_unseen(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, where: str
) -> None:
    # A wrapper runs around every plain hook, ours too: the gate is gone before we select.
    Path(pytester.path, where).mkdir(exist_ok=True)
    Path(pytester.path, where, "conftest.py").write_text(
        "import pytest\n"
        "@pytest.hookimpl(wrapper=True)\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    items[:] = [i for i in items if 'security' not in i.name]\n"
        "    return (yield)\n"
    )
    Path(pytester.path, where, "test_g.py").write_text(GATES)
    result, report = run_and_parse("--promotion-config=none", "--env=prod")
    assert result.ret == 1
    gate = "test_g.py::test_security" if where == "." else "sub/test_g.py::test_security"
    assert report["reasons"] == [
        "1 gate of prod was deselected (-k, -m, --deselect, --lf, --sw or a conftest): "
        f"a partial run cannot promote prod (e.g. {gate})"
    ]


def test_deselect_option_blocks_prod(pytester: pytest.Pytester, run_and_parse: RunAndParse) -> None:
    pytester.makepyfile(test_g=GATES)
    result, report = run_and_parse(
        "--promotion-config=none", "--env=prod", "--deselect=test_g.py::test_security"
    )
    assert result.ret == 1
    assert report["decision"] == "block"
    result.stdout.fnmatch_lines(
        ["*reason: 1 gate of prod was deselected*test_g.py::test_security)"]
    )


def test_last_failed_rerun_cannot_promote_prod(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(
        test_g="""
        import pathlib, pytest
        pytestmark = pytest.mark.dev
        def test_coverage(): assert pathlib.Path("fixed").exists(), "coverage below threshold"
        def test_health(): pass
        """
    )
    assert run_and_parse("--promotion-config=none", "--env=prod")[0].ret == 1
    (pytester.path / "fixed").write_text("")
    result, report = run_and_parse("--promotion-config=none", "--env=prod", "--lf")
    result.assert_outcomes(passed=1)  # --lf did not even collect test_health
    assert result.ret == 1
    assert report["decision"] == "block"
    assert report["reasons"] == [
        "--lf ran only the 1 previously failed test: a partial run cannot promote prod"
    ]
    assert (
        run_and_parse("--promotion-config=none", "--env=prod")[0].ret == 0
    )  # the full run promotes


def test_last_failed_leaving_a_gate_file_out_cannot_promote_prod(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    # The only recorded failure is a unit test (not a gate): --lf then skips test_c.py,
    # with its failing gate, at collection, where no selection of ours sees it.
    pytester.makepyfile(
        test_a="""
        import pytest
        @pytest.mark.dev
        class TestGates:
            def test_health(self): pass
        def test_unit(): assert False
        """,
        test_c="""
        import pytest
        @pytest.mark.dev
        def test_security(): assert False, "critical finding"
        """,
    )
    pytester.runpytest("--promotion-config=none", "test_a.py")  # records test_unit's failure only
    result, report = run_and_parse("--promotion-config=none", "--env=prod", "--lf")
    assert result.ret == 1
    assert report["decision"] == "block"
    assert report["reasons"] == ["--lf left 1 file out: a partial run cannot promote prod"]


def test_last_failed_with_no_recorded_failure_among_the_gates_is_a_whole_run(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    # The recorded failure is in unit/, the run selects gates/: pytest runs every gate.
    pytester.mkpydir("unit")
    Path(pytester.path, "unit", "test_u.py").write_text("def test_unit(): assert False\n")
    pytester.mkpydir("gates")
    Path(pytester.path, "gates", "test_g.py").write_text(
        "import pytest\npytestmark = pytest.mark.dev\ndef test_a(): pass\ndef test_b(): pass\n"
    )
    pytester.runpytest("--promotion-config=none", "unit")
    result, report = run_and_parse("--promotion-config=none", "--env=prod", "gates", "--lf")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    assert report["decision"] == "promote"


# -- 3. pytest.exit(returncode=0) before the session ---------------------------------------
@pytest.mark.parametrize("hook", ["pytest_sessionstart(session)", "pytest_configure(config)"])
@pytest.mark.integration
def test_pytest_exit_zero_before_the_session_does_not_exit_0(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hook: str
) -> None:
    pytester.makeconftest(
        f"""
        import pytest
        def {hook}:
            pytest.exit("target already at this version, nothing to do", returncode=0)
        """
    )
    pytester.makepyfile(test_g=GATES)
    result, report = run_and_parse("--env=dev", subprocess=True)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stderr.fnmatch_lines(["promotion: the run ended before a decision was made*exit 3*"])
    assert report["decision"] == "block"
    # Without a target environment the plugin changes nothing.
    assert pytester.runpytest_subprocess().ret == 0


@pytest.mark.integration
def test_pytest_exit_zero_in_a_gate_blocks(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.dev
        def test_a(): pytest.exit("enough", returncode=0)
        def test_b(): pass
        """
    )
    result, report = run_and_parse("--env=dev", subprocess=True)
    assert result.ret == 1
    reasons = report["reasons"]
    assert (
        reasons[0] == "the run stopped early (pytest.exit: enough): it cannot vouch for the release"
    )


@pytest.mark.parametrize("args", [["--help"], ["--markers"], ["--version"]])
@pytest.mark.integration
def test_help_markers_version_are_not_gate_runs(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makepyfile(test_g=GATES)
    assert pytester.runpytest_subprocess("--env=dev", *args).ret == 0


def test_collection_error_is_a_stop_not_an_interrupt(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(test_g=GATES, test_broken="import nonexistent_module_xyz\n")
    _, report = run_and_parse("--env=dev")
    reasons = report["reasons"]
    assert reasons[0] == (
        "the run stopped early (1 error during collection): it cannot vouch for the release"
    )
    assert not any("KeyboardInterrupt" in r for r in reasons)


# -- 4. the placeholder comes before anything can fail -------------------------------------
@pytest.mark.integration
def test_usage_errors_leave_block_not_the_previous_promote(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(test_g="import pytest\npytestmark = pytest.mark.dev\ndef test_a(): pass\n")
    result, report = run_and_parse("--env=dev")
    assert result.ret == 0
    assert report["decision"] == "promote"

    pytester.makefile(".toml", promotion='[environments.dev]\ntimeout = "fast"\n')
    result, report = run_and_parse("--env=dev")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert report["decision"] == "block"
    (pytester.path / "promotion.toml").unlink()

    assert run_and_parse("--env=dev")[0].ret == 0
    result, report = run_and_parse("--env=nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert report["decision"] == "block"

    assert run_and_parse("--env=dev")[0].ret == 0
    pytester.makeconftest("def pytest_configure(config):\n    raise RuntimeError('no creds')\n")
    result, report = run_and_parse("--env=dev", subprocess=True)
    assert result.ret != 0
    assert report["decision"] == "block"


# -- 5. a waived gate failing in call and teardown -----------------------------------------
def test_waived_gate_failing_twice_exits_0(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.dev

        @pytest.fixture
        def tool():
            yield
            raise RuntimeError("cleanup failed")

        @pytest.mark.gate(name="lint")
        def test_lint(tool):
            assert False, "lint findings"

        def test_ok(): pass
        """
    )
    result, report = run_and_parse("--env=dev", "--waive=lint=known issue, JIRA-12")
    result.assert_outcomes(failed=1, passed=1, errors=1)
    assert report["decision"] == "promote"
    assert result.ret == 0


# -- 6. a report that cannot be written ----------------------------------------------------
@pytest.mark.integration
def test_unwritable_github_output_blocks_and_other_reports_still_write(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writable when the run starts (checked then), gone at the end.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    pytester.mkdir("gh")
    monkeypatch.setenv("GITHUB_OUTPUT", str(pytester.path / "gh" / "out"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    pytester.makepyfile(
        test_g="import pytest, shutil\npytestmark = pytest.mark.dev\n"
        "def test_a(): shutil.rmtree('gh')\n"
    )
    # What a listener hears, and what the report file says while the rollback runs: the
    # decision is block before either (the rollback command records the report's content).
    pytester.makefile(
        ".toml",
        promotion=f"""
        [environments.dev]
        rollback = ['{sys.executable}', "-c", "import shutil; shutil.copy('decision.json', 'during.json')"]
        """,
    )
    pytester.makeconftest(
        """
        import pathlib
        def pytest_promotion_decision(config, decision):
            pathlib.Path("heard.txt").write_text(decision.decision)
        """
    )
    result, report = run_and_parse(
        "--env=dev", "--junitxml=gate.xml", "--promotion-rollback=execute", subprocess=True
    )
    assert result.ret == 1
    assert (pytester.path / "heard.txt").read_text() == "block"
    assert json.loads((pytester.path / "during.json").read_text())["decision"] == "block"
    result.stdout.fnmatch_lines(
        ["promotion: cannot write $GITHUB_OUTPUT */gh/out: No such file or directory"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert report["decision"] == "block"
    assert report["reasons"] == [
        f"the report could not be written: $GITHUB_OUTPUT {pytester.path}/gh/out: "
        "No such file or directory"
    ]
    assert 'name="promotion.decision" value="block"' in (pytester.path / "gate.xml").read_text()
    assert "**block**" in (pytester.path / "summary.md").read_text()


@pytest.mark.integration
def test_report_directory_gone_at_the_end_blocks(pytester: pytest.Pytester) -> None:
    pytester.mkdir("out")  # a missing one is refused at start (see test_report_paths.py)
    pytester.makepyfile(
        test_g="""
        import pathlib, shutil, pytest
        pytestmark = pytest.mark.dev
        def test_a():
            shutil.rmtree("out")
            pathlib.Path("out").write_text("a file where the report's directory was")
        """
    )
    result = pytester.runpytest_subprocess(
        "--env=dev", "--promotion-report=out/decision.json", "--junitxml=gate.xml"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["promotion: cannot write --promotion-report */out/decision.json: *"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert 'name="promotion.decision" value="block"' in (pytester.path / "gate.xml").read_text()


# -- 7. secrets in captured output, skip reasons and collection errors ---------------------
SECRET_CONFIG = """
[environments.dev]
redis = "redis://:${REDIS_PASSWORD}@127.0.0.1:1/0"
vars = { api_token = "${API_TOKEN}" }
"""


@pytest.fixture
def secret_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dev environment whose redis password and api_token come from ${VAR}s."""
    monkeypatch.setenv("REDIS_PASSWORD", "hunter2secret")
    monkeypatch.setenv("API_TOKEN", "tok-SECRET-123")
    pytester.makefile(".toml", promotion=SECRET_CONFIG)


def assert_masked(pytester: pytest.Pytester, result: pytest.RunResult) -> None:
    shown = result.stdout.str() + result.stderr.str()
    xml = (pytester.path / "j.xml").read_text()
    for secret in ("tok-SECRET-123", "hunter2secret"):
        assert secret not in shown
        assert secret not in xml
    assert "***" in shown
    assert "***" in xml


@pytest.mark.integration
def test_secrets_masked_in_captured_output_logs_and_skips(
    pytester: pytest.Pytester, secret_environment: None
) -> None:
    pytester.makepyfile(
        test_g="""
        import logging, sys, pytest
        pytestmark = pytest.mark.dev

        def test_prints_then_fails(promotion_env):
            print("connecting with token", promotion_env.vars["api_token"])
            print("stderr token", promotion_env.vars["api_token"], file=sys.stderr)
            logging.getLogger("client").warning("token %s", promotion_env.vars["api_token"])
            assert False, "cache unreachable"

        def test_prints_and_passes(promotion_env):
            print("passing with token", promotion_env.vars["api_token"])

        def test_skip_message(promotion_env):
            pytest.skip(f"token {promotion_env.vars['api_token']} lacks scope")
        """
    )
    result = pytester.runpytest_subprocess(
        "--env=dev", "-rA", "--junitxml=j.xml", "-o", "junit_logging=all"
    )
    assert result.ret == 1
    out = result.stdout.str()
    for line in (
        "connecting with token ***",  # captured stdout, stderr, log of a failure
        "stderr token ***",
        "WARNING  client:test_g.py:7 token ***",
        "passing with token ***",  # -rA shows a passing gate's output too
        "SKIPPED [1] test_g.py:14: token *** lacks scope",
    ):
        assert line in out.splitlines()
    assert_masked(pytester, result)


@pytest.mark.integration
def test_secrets_masked_in_collection_errors(
    pytester: pytest.Pytester, secret_environment: None
) -> None:
    pytester.makepyfile(
        test_g="""
        import os, pytest
        pytestmark = pytest.mark.dev
        TOKEN = os.environ["API_TOKEN"]
        if not TOKEN.startswith("tok-live"):
            raise RuntimeError(f"wrong token for this environment: {TOKEN}")
        def test_a(): pass
        """
    )
    result = pytester.runpytest_subprocess("--env=dev", "--junitxml=j.xml")
    assert result.ret != 0
    assert "E   RuntimeError: wrong token for this environment: ***" in result.stdout.lines
    assert_masked(pytester, result)


@pytest.mark.integration
def test_secrets_masked_in_xpass_reasons_and_pytest_exit(
    pytester: pytest.Pytester, secret_environment: None
) -> None:
    pytester.makepyfile(
        test_g="""
        import os, pytest
        pytestmark = pytest.mark.dev
        TOKEN = os.environ["API_TOKEN"]

        @pytest.mark.xfail(reason=f"flaky with token {TOKEN}")
        def test_passes_unexpectedly():
            pass

        def test_gives_up():
            pytest.exit(f"abort with {TOKEN}", returncode=0)
        """
    )
    result = pytester.runpytest_subprocess("--env=dev", "-rX", "--junitxml=j.xml")
    assert result.ret != 0
    out = result.stdout.str() + result.stderr.str()
    assert "XPASS test_g.py::test_passes_unexpectedly - flaky with token ***" in out
    assert "abort with ***" in out
    assert "tok-SECRET-123" not in out


@pytest.mark.integration
def test_secrets_masked_in_warnings_and_recorded_properties(
    pytester: pytest.Pytester, secret_environment: None
) -> None:
    pytester.makepyfile(
        test_g="""
        import os, warnings, pytest
        pytestmark = pytest.mark.dev

        def test_warns_and_records(record_property, record_testsuite_property):
            token = os.environ["API_TOKEN"]
            warnings.warn(f"deprecated auth with {token}")
            record_property("token_used", token)
            record_property("retries", 3)
            record_testsuite_property("deploy_token", token)
        """
    )
    pytester.makeconftest(
        """
        import pathlib, pytest
        @pytest.hookimpl(trylast=True)
        def pytest_runtest_logreport(report):
            if report.when == "call":
                pathlib.Path("props.txt").write_text(repr(report.user_properties))
        """
    )
    result = pytester.runpytest_subprocess("--env=dev", "--junitxml=j.xml")
    assert result.ret == 0
    assert "UserWarning: deprecated auth with ***" in result.stdout.str()
    xml = (pytester.path / "j.xml").read_text()
    assert 'name="token_used" value="***"' in xml
    assert 'name="deploy_token" value="***"' in xml
    assert "('retries', 3)" in (pytester.path / "props.txt").read_text()  # still a number
    assert_masked(pytester, result)


@pytest.mark.integration
def test_report_placeholder_has_the_environment(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    # The early placeholder names the environment and version asked for.
    pytester.makeconftest("def pytest_configure(config):\n    raise RuntimeError('boom')\n")
    _, data = run_and_parse("--env=staging", "--promotion-version=1.2.3", subprocess=True)
    assert (data["decision"], data["environment"], data["version"]) == ("block", "staging", "1.2.3")
