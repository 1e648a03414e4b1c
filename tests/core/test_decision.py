"""The decision rules of the README's "The decision" (and pytest_promotion/decision.py):
first each as a user sees it in a real run (exit code, JSON decision, summary line), then
decide() itself, one table row per rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pytest_promotion.decision import GateRecord, RunFacts, decide
from tests.reports import ReadReport

REPORT = "--promotion-report=decision.json"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--env=staging", REPORT, *args)


def test_all_gates_pass_promotes(pytester: pytest.Pytester, read_report: ReadReport) -> None:
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


def test_measure_below_minimum_blocks_with_one_line(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
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


def test_rollback_trigger_failure_decides_rollback(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
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


def test_runtime_rollback_trigger_from_gate_fixture(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
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
    pytester: pytest.Pytester, read_report: ReadReport
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


def test_collection_error_blocks(pytester: pytest.Pytester, read_report: ReadReport) -> None:
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
    pytester: pytest.Pytester, read_report: ReadReport, env: str, decision: str, ret: int
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


def test_allow_skips_can_be_set_per_environment(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
    pytester.makefile(".toml", promotion="[environments.staging]\nallow_skips = false\n")
    pytester.makepyfile(
        "import pytest\n@pytest.mark.dev\ndef test_s():\n    pytest.skip('later')\n"
    )
    assert run(pytester).ret == 1
    assert read_report()["decision"] == "block"


def test_xfail_gate_cannot_vouch(pytester: pytest.Pytester, read_report: ReadReport) -> None:
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


@pytest.mark.integration
def test_conftest_rewriting_exit_status_cannot_promote(
    pytester: pytest.Pytester, read_report: ReadReport
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


def test_maxfail_leaves_gates_not_run_and_blocks(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
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


@pytest.mark.integration
def test_internal_error_in_a_hook_blocks(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
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


def test_another_plugin_failing_the_session_blocks(
    pytester: pytest.Pytester, read_report: ReadReport
) -> None:
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


def test_collect_only_never_promotes(pytester: pytest.Pytester, read_report: ReadReport) -> None:
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_ok(): pass\n")
    result = run(pytester, "--collect-only")
    assert result.ret != 0
    assert read_report()["decision"] == "block"


# ---------------------------------------------------------------------------------------
# decide() itself, one row per rule of the README's "The decision". The rules that act
# after decide() (a report that cannot be written, the finalize and decision hooks)
# are tested in test_final_decision.py; the ones that shape a gate's record (a
# measurement's missing data, a later passing report of a failed test) in test_records.py.


def _passed(gate_id: str) -> GateRecord:
    return GateRecord(id=gate_id, name=gate_id, outcome="passed")


def _failed(gate_id: str, message: str, *, trigger: bool = False) -> GateRecord:
    return GateRecord(
        id=gate_id, name=gate_id, outcome="failed", message=message, rollback_trigger=trigger
    )


def _facts(*selected: str, **changes: Any) -> RunFacts:
    """A run that collected ``selected`` in staging, with ``changes`` to its facts."""
    facts = RunFacts(environment="staging", selected=list(selected), collected=True)
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


@dataclass(frozen=True)
class Row:
    """A rule: the run's facts and gate records, and the decision, reasons and warnings a
    user then reads in the report."""

    facts: RunFacts
    records: tuple[GateRecord, ...]
    decision: str
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


PARTIAL = "a partial run cannot promote staging"
ROWS: dict[str, Row] = {
    "promote: every selected gate passed": Row(
        _facts("a", "b"), (_passed("a"), _passed("b")), "promote"
    ),
    "promote: a failed gate carries a waiver": Row(
        _facts("a", "b", waivers={"b": "JIRA-1"}),
        (_passed("a"), _failed("b", "slow")),
        "promote",
    ),
    "promote: a waiver also covers a rollback trigger": Row(
        _facts("h", waivers={"h": "known outage"}), (_failed("h", "503", trigger=True),), "promote"
    ),
    "block: no gate selected": Row(_facts(), (), "block", ("no gate selected for staging",)),
    "block: no gate selected, saying how many tests had no marker": Row(
        _facts(unmarked=3),
        (),
        "block",
        ("no gate selected for staging (3 tests without an environment marker were deselected)",),
    ),
    "rollback: a failed rollback trigger": Row(
        _facts("h"), (_failed("h", "503", trigger=True),), "rollback", ("gate h failed: 503",)
    ),
    "rollback: wins over a block, its reason first": Row(
        _facts("lint", "h"),
        (_failed("lint", "E501"), _failed("h", "503", trigger=True)),
        "rollback",
        ("gate h failed: 503", "gate lint failed: E501"),
    ),
    "block: a failed gate that is no rollback trigger": Row(
        _facts("cov"),
        (_failed("cov", "cov: 57.2 % < 60 %"),),
        "block",
        ("gate cov failed: cov: 57.2 % < 60 %",),
    ),
    "block: a measurement with no data, even on a rollback gate": Row(
        # gate.measure(None) records a failure that is no rollback trigger (gate.py)
        _facts("h"),
        (_failed("h", "h: no data (None) to compare with >= 1"),),
        "block",
        ("gate h failed: h: no data (None) to compare with >= 1",),
    ),
    "block: an errored gate (a fixture error), even a rollback trigger": Row(
        _facts("h"),
        (GateRecord(id="h", name="h", outcome="error", message="boom", rollback_trigger=True),),
        "block",
        ("gate h errored (no measurement): boom",),
    ),
    "block: a selected gate without a record did not run (-x)": Row(
        _facts("a", "b"),
        (_failed("a", "no"),),
        "block",
        ("gate a failed: no", "gate b did not run"),
    ),
    "block: a gate marked xfail cannot vouch": Row(
        _facts("x"),
        (GateRecord(id="x", name="x", outcome="passed", xfail=True),),
        "block",
        ("gate x is marked xfail: a gate expected to fail cannot vouch",),
    ),
    "block: a gate that crashed its xdist worker": Row(
        _facts("c"),
        (GateRecord(id="c", name="c", outcome="failed", crashed=True, rollback_trigger=True),),
        "block",
        ("gate c crashed its xdist worker",),
    ),
    "promote: a skipped gate where skips are allowed is a warning": Row(
        _facts("a", "s"),
        (_passed("a"), GateRecord(id="s", name="s", outcome="skipped", message="no scanner")),
        "promote",
        warnings=("gate s was skipped: no scanner",),
    ),
    "block: a skipped gate where skips are forbidden": Row(
        _facts("a", "s", allow_skips=False),
        (_passed("a"), GateRecord(id="s", name="s", outcome="skipped", message="no scanner")),
        "block",
        ("gate s was skipped, and staging forbids skips: no scanner",),
    ),
    "block: a collection error": Row(
        _facts("a", collection_errors=["test_broken.py"]),
        (_passed("a"),),
        "block",
        ("collection error: test_broken.py",),
    ),
    "block: collection did not finish": Row(
        _facts("a", collected=False), (_passed("a"),), "block", ("collection did not finish",)
    ),
    "block: an internal error": Row(
        _facts("a", internal_errors=["RuntimeError: boom in a hook"]),
        (_passed("a"),),
        "block",
        ("internal error: RuntimeError: boom in a hook",),
    ),
    "block: an interrupt (Ctrl-C, SIGTERM)": Row(
        _facts("a", interrupted="KeyboardInterrupt"),
        (_passed("a"),),
        "block",
        ("the run was interrupted (KeyboardInterrupt): it cannot vouch for the release",),
    ),
    "block: a run stopped early (-x, --maxfail, pytest.exit)": Row(
        _facts("a", stopped="pytest.exit"),
        (_passed("a"),),
        "block",
        ("the run stopped early (pytest.exit): it cannot vouch for the release",),
    ),
    "block: a crashed xdist worker": Row(
        _facts("a", crashed_workers=["gw1"]),
        (_passed("a"),),
        "block",
        ("xdist worker gw1 crashed",),
    ),
    "block: a failure another plugin added outside the gates": Row(
        _facts("a", foreign_failures=1),
        (_passed("a"),),
        "block",
        ("the run reports 1 failure(s) outside the gates (another plugin failed the session)",),
    ),
    "block: a usage error, and nothing about the missing gates": Row(
        _facts(usage_errors=["waiver for 'nope' names no gate"]),
        (),
        "block",
        ("usage error: waiver for 'nope' names no gate",),
    ),
    "block: a waiver naming no selected gate": Row(
        _facts("a", waivers={"nope": "JIRA-2"}),
        (_passed("a"),),
        "block",
        ("waiver for 'nope' names no selected gate",),
    ),
    "promote: a waiver that was not needed is a warning": Row(
        _facts("a", waivers={"a": "JIRA-3"}),
        (_passed("a"),),
        "promote",
        warnings=("waiver for a was not needed: the gate did not fail",),
    ),
    "promote: a module skipped at collection is a warning where skips are allowed": Row(
        _facts("a", skipped_modules=[("test_db.py", "no driver")]),
        (_passed("a"),),
        "promote",
        warnings=("test_db.py was skipped at collection: no driver",),
    ),
    "block: a module skipped at collection where skips are forbidden": Row(
        _facts("a", allow_skips=False, skipped_modules=[("test_db.py", "no driver")]),
        (_passed("a"),),
        "block",
        ("test_db.py was skipped at collection, and staging forbids skips: no driver",),
    ),
    "promote: dropped gates are a warning where skips are allowed": Row(
        _facts("a", dropped=["b"]),
        (_passed("a"),),
        "promote",
        warnings=(
            "1 gate of staging was deselected (-k, -m, --deselect, --lf, --sw or a conftest): "
            "this run vouches only for the rest (e.g. b)",
        ),
    ),
    "block: dropped gates where skips are forbidden": Row(
        _facts("a", allow_skips=False, dropped=["b", "c"]),
        (_passed("a"),),
        "block",
        (
            "2 gates of staging were deselected (-k, -m, --deselect, --lf, --sw or a "
            f"conftest): {PARTIAL} (e.g. b, c)",
        ),
    ),
    "block: paths excluded from collection where skips are forbidden": Row(
        _facts("a", allow_skips=False, ignored=["tests/slow"]),
        (_passed("a"),),
        "block",
        (
            "1 path excluded from collection (--ignore, --ignore-glob, collect_ignore or a "
            f"plugin): tests/slow: {PARTIAL}",
        ),
    ),
    "block: a run narrowed during collection (--lf) where skips are forbidden": Row(
        _facts("a", allow_skips=False, narrowed="--lf ran only the last failures"),
        (_passed("a"),),
        "block",
        (f"--lf ran only the last failures: {PARTIAL}",),
    ),
    "promote: a run narrowed during collection is a warning where skips are allowed": Row(
        _facts("a", narrowed="--lf ran only the last failures"),
        (_passed("a"),),
        "promote",
        warnings=("--lf ran only the last failures: this run vouches only for them",),
    ),
}


@pytest.mark.parametrize("rule", list(ROWS))
def test_decide_applies_the_rule(rule: str) -> None:
    row = ROWS[rule]
    decision = decide(row.facts, {r.id: r for r in row.records}, version="1.2.3")
    assert (decision.decision, decision.reasons, decision.warnings) == (
        row.decision,
        list(row.reasons),
        list(row.warnings),
    )
    assert decision.promote == (row.decision == "promote")
    assert [g.id for g in decision.gates] == list(row.facts.selected)


def test_a_waived_gate_names_its_waiver_in_the_report() -> None:
    facts = _facts("a", waivers={"a": "JIRA-1"})
    decision = decide(facts, {"a": _failed("a", "slow")})
    assert decision.decision == "promote"
    assert decision.gates[0].waiver == "JIRA-1"
    assert decision.waivers == [{"gate": "a", "reason": "JIRA-1", "used": True}]


def test_a_waiver_matches_the_gate_name_as_written_in_the_config() -> None:
    record = GateRecord(id="gates/x.toml::staging::health", name="staging::health")
    record.outcome, record.message, record.rollback_trigger = "failed", "503", True
    decision = decide(_facts(record.id, waivers={"health": "JIRA-4"}), {record.id: record})
    assert decision.decision == "promote"
    assert decision.gates[0].waiver == "JIRA-4"
