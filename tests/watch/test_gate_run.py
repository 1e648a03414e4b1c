"""The watch inside a gate run (``--promotion-watch``): the promote recorded first, the
watch appended to it, a rollback turning the run's decision, the hold blocking the next
promotion until release-hold, and SIGTERM ending the watch incomplete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.http.conftest import Servers
from tests.support import child_environ
from tests.watch.conftest import Flaky, Project
from tests.watch.test_watch import health

WATCH = 'watch = { duration = "0.2s", interval = "0.05s", failure_limit = 0 }'


@pytest.fixture
def gate_project(pytester: pytest.Pytester, servers: Servers) -> Project:
    return Project(pytester.path, servers.ca_file)


def run(pytester: pytest.Pytester, version: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--env=staging",
                              f"--promotion-version={version}",
                              "--promotion-previous-version=v1", *args)  # fmt: skip


def test_a_healthy_watch_keeps_the_promote_and_appends_to_its_record(
    pytester: pytest.Pytester, gate_project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    gate_project.config(health(target.url), watch=WATCH)
    report = pytester.path / "report.json"
    result = run(pytester, "v2", "--promotion-watch=0.2s", f"--promotion-report={report}")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "watch staging: measurement 1 of 4: successful; failures 0 (limit 0)*",
        "watch staging: measurement 4 of 4: successful*",
        "staging::watch*4 of 4 measurements, 0 failed*PASS",
        "decision: PROMOTE*",
    ])  # fmt: skip
    decision = gate_project.records("decision")
    assert [r.decision for r in decision] == ["promote"]
    measurements = gate_project.records("measurement")
    assert len(measurements) == 4
    start = next(r for r in gate_project.records("watch") if r.decision == "running")
    assert start.body["decision_record"] == decision[0].id
    gates = json.loads(report.read_text())["gates"]
    assert gates[-1]["id"] == "staging::watch" and gates[-1]["outcome"] == "passed"


@pytest.mark.integration
def test_a_watch_that_fails_rolls_the_run_back_and_holds_the_environment(
    pytester: pytest.Pytester, gate_project: Project, servers: Servers
) -> None:
    flaky = Flaky(healthy=2)  # the gate run's probe, the watch's first measurement
    target = servers.https({"/health": flaky})
    gate_project.config(health(target.url), watch=WATCH)
    result = run(pytester, "v2", "--promotion-watch=1s", "--promotion-rollback=execute")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "watch staging: measurement 2 of 20: failed; failures 1 (limit 0)*",
        "staging::watch*2 of 20 measurements, 1 failed*ROLLBACK",
        "decision: ROLLBACK v2 -> staging",
        "  reason: watch: 1 failed measurements (failure_limit 0), the last at measurement 2 "
        "of 20: staging::health: expected 200, got 503; rolled back by the gate run*; staging "
        "is on hold (record *)*",
        "rollback executed: exit 0",
    ])  # fmt: skip
    assert gate_project.marks.read_text() == "v1\n"  # the run's rollback step, once
    assert [r.decision for r in gate_project.records("decision")] == ["promote"]
    assert [(r.version, r.decision) for r in gate_project.records("rollback")] == [("v2", "done")]
    assert [h.decision for h in gate_project.records("hold")] == ["on"]

    # the next promotion is blocked by the hold, whatever its gates say
    healthy = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    gate_project.config(health(healthy.url), watch=WATCH)
    blocked = run(pytester, "v3")
    assert blocked.ret == 1
    blocked.stdout.fnmatch_lines([
        "decision: BLOCK*",
        "*staging is on hold since * (record *): release it with `promotion release-hold "
        "--env staging --reason ...` (an approval does not clear a hold)",
    ])  # fmt: skip
    code, _, err = gate_project.cli("release-hold", "--env", "staging", "--reason", "fixed")
    assert code == 0, err
    assert run(pytester, "v3").ret == 0


@pytest.mark.integration
def test_the_lease_is_held_during_the_watch_and_sigterm_ends_it_incomplete(
    pytester: pytest.Pytester, gate_project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    gate_project.config(health(target.url), watch=WATCH, promotion='lock_timeout = "1s"')
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--env=staging",
         "--promotion-version=v2", "--promotion-previous-version=v1", "--promotion-watch=60s",
         "--promotion-rollback=execute"],
        cwd=pytester.path, env=child_environ(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        lines.append(line)
        if "measurement 3 of 1200" in line:
            second = run(pytester, "v3")  # the same environment, while the watch runs
            os.kill(proc.pid, signal.SIGTERM)
            break
        assert time.monotonic() < deadline, "".join(lines)
    out = "".join(lines) + proc.stdout.read()
    assert proc.wait(timeout=60) == 1, out
    assert "the watch ended incomplete (SIGTERM received) after measurement" in out
    assert "decision: BLOCK" in out
    assert not gate_project.marks.exists()  # a watch cut short never rolls back
    assert len(gate_project.records("measurement")) >= 3
    assert not gate_project.records("hold")
    assert second.ret == 1
    second.stdout.fnmatch_lines(
        ["*reason: staging is being promoted by * (v2, *) since *: waited 1 s (lock_timeout)"]
    )
    assert [r.decision for r in gate_project.records("decision")] == ["promote", "block"]


@pytest.mark.integration
def test_requires_previous_counts_a_promote_under_watch_only_with_allow_watching(
    pytester: pytest.Pytester, gate_project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    prod = '\n[[environments.prod.checks]]\nname = "after-staging"\nrequires_previous = true\n'
    gate_project.config(health(target.url) + prod)
    assert run(pytester, "v2").ret == 0  # staging promotes v2 (no watch table: no watch)
    watch = subprocess.Popen(
        [sys.executable, "-m", "pytest_promotion.cli", "watch", "--env", "staging",
         "--version", "v2", "--duration", "60s", "--interval", "0.05s"],
        cwd=pytester.path, env=child_environ(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert watch.stdout is not None
    try:
        assert "measurement 1 of 1200" in watch.stdout.readline()
        blocked = pytester.runpytest("-p", "no:cacheprovider", "--env=prod",
                                     "--promotion-version=v2")  # fmt: skip
        assert blocked.ret == 1
        blocked.stdout.fnmatch_lines([
            "*prod::after-staging failed: v2 is promoted in staging, but its watch there is "
            "still running (since *, record *): it may still roll back; allow_watching = true "
            "counts a promote under watch",
        ])  # fmt: skip
        gate_project.config(health(target.url) + prod + "allow_watching = true\n")
        allowed = pytester.runpytest("-p", "no:cacheprovider", "--env=prod",
                                     "--promotion-version=v2")  # fmt: skip
        assert allowed.ret == 0
    finally:
        watch.send_signal(signal.SIGTERM)
        out = watch.communicate(timeout=60)[0]
    assert watch.returncode == 1 and "the watch ended incomplete (SIGTERM received)" in out


def test_a_watch_that_fails_mid_window_blocks_without_an_internal_error(
    pytester: pytest.Pytester, gate_project: Project, servers: Servers
) -> None:
    """A terminal that fails (EIO: the CI runner's tty went away) while the watch writes a
    progress line: the watch ends incomplete and the run blocks, with one line; it was an
    INTERNALERROR (exit 3), and the run printed no decision."""
    target = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    gate_project.config(health(target.url), watch=WATCH)
    pytester.makeconftest("""
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            write_line = reporter.write_line

            def failing(line, **markup):
                if str(line).startswith("watch staging: measurement 2 "):
                    raise OSError(5, "Input/output error")
                write_line(line, **markup)

            reporter.write_line = failing
    """)  # fmt: skip
    result = run(pytester, "v2", "--promotion-rollback=execute")
    assert result.ret == 1
    out = result.stdout.str()
    assert "INTERNALERROR" not in out + result.stderr.str()
    result.stdout.fnmatch_lines([
        "decision: BLOCK v2 -> staging",
        "  reason: watch: the watch ended incomplete (the watch failed: OSError: [Errno 5] "
        "Input/output error) after measurement 2 of 4: a watch cut short is never a promote",
    ])  # fmt: skip
    assert not gate_project.marks.exists() and not gate_project.records("hold")
    assert [m.body["n"] for m in gate_project.records("measurement")] == [1, 2]  # once
    assert [r.decision for r in gate_project.records("watch")] == ["running", "block"]
