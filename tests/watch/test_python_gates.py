"""Python gates marked ``@pytest.mark.gate(watch=True)``, re-run by the watch at every
measurement (a child pytest): in a gate run with ``--promotion-watch`` (also under xdist)
and in ``promotion watch``. Real HTTPS targets (trustme) read by the gates themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.http.conftest import Handler, Servers
from tests.watch.conftest import Flaky, Project

# the gate run's own measurement, then every measurement of the watch
GATE = '''
import os
import time

import pytest
import requests

URL = {url!r}
CA = {ca!r}


@pytest.fixture
def metrics():
    got = requests.get(URL + "/metrics", verify=CA, timeout=5)
    if got.status_code != 200:
        raise RuntimeError(f"the metrics endpoint answered {{got.status_code}}")
    return got


@pytest.mark.staging
@pytest.mark.gate(watch=True, trigger="rollback")
def test_health(gate):
    got = requests.get(URL + "/health", verify=CA, timeout=5)
    gate.measure(got.status_code, min=200, max=299)


@pytest.mark.staging
@pytest.mark.gate(watch={watch_errors!r}, name="error-rate")
def test_error_rate(gate, metrics):
    if os.path.exists("hang"):
        time.sleep(120)  # a hung gate: the watch's deadline kills it
    gate.measure(0.5, unit="%", max=1)


@pytest.mark.staging
def test_not_watched():
    requests.get(URL + "/unwatched", verify=CA, timeout=5)
'''


def OK(handler: Handler) -> None:
    handler.reply(200, {"status": "ok"})


def gates(project: Project, url: str, *, watch_errors: bool = False) -> None:
    (project.path / "test_gates.py").write_text(
        GATE.format(url=url, ca=str(project.ca_file), watch_errors=watch_errors)
    )


def watch_table(duration: str = "10s", limit: int = 0, errors: int = 4) -> str:
    return (f'watch = {{ duration = "{duration}", interval = "0.05s", failure_limit = {limit}, '
            f'consecutive_error_limit = {errors}, gate_timeout = "60s" }}')  # fmt: skip


@pytest.fixture
def gate_project(pytester: pytest.Pytester, servers: Servers) -> Project:
    return Project(pytester.path, servers.ca_file)


def gate_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--env=staging", "--promotion-version=v2",
        "--promotion-previous-version=v1", *args, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_watched_python_gate_that_turns_unhealthy_rolls_the_run_back(
    pytester: pytest.Pytester, gate_project: Project, servers: Servers, workers: list[str]
) -> None:
    flaky = Flaky(healthy=3)  # the gate run, then measurements 1 and 2
    unwatched = Flaky(healthy=1)
    target = servers.https({"/health": flaky, "/unwatched": unwatched, "/metrics": OK})
    gates(gate_project, target.url)
    gate_project.config("", watch=watch_table())
    report = pytester.path / "report.json"
    result = gate_run(pytester, *workers, "--promotion-rollback=execute",
                      f"--promotion-report={report}")  # fmt: skip
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines([
        "watch staging: measurement 1 of 200: successful; *; test_health=200",
        "watch staging: measurement 2 of 200: successful; *",
        "watch staging: measurement 3 of 200: failed; failures 1 (limit 0)*test_health=503",
        "staging::watch*3 of 200 measurements, 1 failed*ROLLBACK",
        "decision: ROLLBACK v2 -> staging",
        "  reason: watch: 1 failed measurements (failure_limit 0), the last at measurement 3 "
        "of 200: test_gates.py::test_health: 503 > 299; rolled back by the gate run*",
        "rollback executed: exit 0",
    ])  # fmt: skip
    assert gate_project.marks.read_text() == "v1\n"
    assert flaky.count == 4 and unwatched.count == 1  # only the watched gate is re-run
    start = next(r for r in gate_project.records("watch") if r.decision == "running")
    assert start.body["gates"] == ["test_gates.py::test_health"]
    measurements = gate_project.records("measurement")
    assert [m.decision for m in measurements] == ["successful", "successful", "failed"]
    last = measurements[-1].body["gates"][0]
    assert (last["id"], last["state"], last["measured"], last["rollback"]) == (
        "test_gates.py::test_health", "failed", 503.0, True
    )  # fmt: skip
    assert last["threshold"] == ">= 200 and <= 299"
    assert [(r.version, r.decision) for r in gate_project.records("rollback")] == [("v2", "done")]
    assert json.loads(report.read_text())["decision"] == "rollback"
