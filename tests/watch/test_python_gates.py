"""Python gates marked ``@pytest.mark.gate(watch=True)``, re-run by the watch at every
measurement (a child pytest): in a gate run with ``--promotion-watch`` (also under xdist)
and in ``promotion watch``. Real HTTPS targets (trustme) read by the gates themselves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.http.conftest import Handler, Servers
from tests.support import child_environ
from tests.watch.conftest import Flaky, Project
from tests.watch.test_watch import health

# the gate run's own measurement, then every measurement of the watch
GATE = """
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
        with open("hanging", "w") as out:
            out.write(str(os.getpid()))
        time.sleep(120)  # a hung gate: the watch's deadline kills it
    gate.measure(0.5, unit="%", max=1)


@pytest.mark.staging
def test_not_watched():
    requests.get(URL + "/unwatched", verify=CA, timeout=5)
"""


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
@pytest.mark.integration
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


@pytest.mark.integration
def test_a_healthy_watched_python_gate_keeps_the_promote_and_launches_nothing_again(
    pytester: pytest.Pytester, gate_project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": OK, "/unwatched": OK, "/metrics": OK})
    gates(gate_project, target.url)
    launched = pytester.path / "launched.txt"
    launch = json.dumps([sys.executable, "-c", "import pathlib; p = pathlib.Path('launched.txt'); "
                         "p.write_text((p.read_text() if p.exists() else '') + 'up\\n')"])  # fmt: skip
    gate_project.config(f"launch = {launch}\n", watch=watch_table(duration="0.15s"))
    result = gate_run(pytester)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "watch staging: measurement 3 of 3: successful; *; test_health=200",
        "staging::watch*3 of 3 measurements, 0 failed, 0 without data*PASS",
        "decision: PROMOTE*",
    ])  # fmt: skip
    assert [m.decision for m in gate_project.records("measurement")] == ["successful"] * 3
    assert launched.read_text() == "up\n"  # the gate run's; never the watch's runs


@pytest.mark.integration
def test_a_watched_python_gate_that_cannot_measure_blocks_and_holds_never_rolls_back(
    pytester: pytest.Pytester, gate_project: Project, servers: Servers
) -> None:
    metrics = Flaky(healthy=1)  # the gate run's fixture; then its fixture errors
    target = servers.https({"/health": OK, "/unwatched": OK, "/metrics": metrics})
    gates(gate_project, target.url, watch_errors=True)
    gate_project.config("", watch=watch_table(errors=1))
    result = gate_run(pytester, "--promotion-rollback=execute")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines([
        "watch staging: measurement 1 of 200: error; failures 0 (limit 0), errors in a row 1 "
        "(limit 1); test_health=200, error-rate=error",
        "watch staging: measurement 2 of 200: error; *errors in a row 2 (limit 1)*",
        "decision: BLOCK v2 -> staging",
        "  reason: watch: 2 measurements in a row could not measure (consecutive_error_limit "
        "1), the last at measurement 2 of 200: error-rate: RuntimeError: the metrics endpoint "
        "answered 503; not evidence against the release, never a pass: held; staging is on "
        "hold (record *)*",
    ])  # fmt: skip
    assert "rollback executed" not in result.stdout.str()
    assert not gate_project.marks.exists()
    assert not gate_project.records("rollback")
    assert [h.decision for h in gate_project.records("hold")] == ["on"]
    gates_of = [m.body["gates"] for m in gate_project.records("measurement")]
    assert [[(g["id"], g["state"]) for g in m] for m in gates_of] == [
        [("test_gates.py::test_health", "successful"), ("error-rate", "error")]
    ] * 2


@pytest.mark.integration
def test_promotion_watch_runs_the_python_gates_for_the_whole_window(
    project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": OK, "/unwatched": OK, "/metrics": OK})
    gates(project, target.url, watch_errors=True)
    (project.path / "conftest.py").write_text(
        "import os\n\n\ndef pytest_promotion_decision(config, decision):\n"
        "    with open('told.txt', 'a') as out:\n"
        "        out.write(os.environ.get('PROMOTION_WATCH_RUN', '-') + '\\n')\n"
    )  # fmt: skip
    project.config("", watch=watch_table(duration="0.15s"))
    code, out, err = project.cli("watch", "--env", "staging", "--version", "v2")
    assert code == 0, out + err
    # the child runs are gate runs too: a notifying hook can tell them by the variable
    assert (project.path / "told.txt").read_text() == "1\n" * 4  # discovery, 3 measurements
    assert "watch staging: measurement 3 of 3: successful; failures 0 (limit 0), errors in a " \
           "row 0 (limit 4); test_health=200, error-rate=0.5 %" in out  # fmt: skip
    assert "decision: PROMOTE: watched 3 measurements over 0.15 s: 0 failed (limit 0)" in out
    measurements = project.records("measurement")
    assert [m.body["n"] for m in measurements] == [1, 2, 3]
    for m in measurements:
        assert m.decision == "successful"
        assert [(g["id"], g["measured"], g["unit"]) for g in m.body["gates"]] == [
            ("test_gates.py::test_health", 200.0, ""), ("error-rate", 0.5, "%")
        ]  # fmt: skip
    start = next(r for r in project.records("watch") if r.decision == "running")
    assert start.body["gates"] == ["test_gates.py::test_health", "error-rate"]


@pytest.mark.integration
def test_promotion_watch_rolls_back_on_the_python_gate_s_failure(
    project: Project, servers: Servers
) -> None:
    flaky = Flaky(healthy=1)
    target = servers.https({"/health": flaky, "/unwatched": OK, "/metrics": OK})
    gates(project, target.url)
    project.config("", watch=watch_table())
    code, out, err = project.cli("watch", "--env", "staging", "--version", "v2",
                                 "--previous-version", "v1", "--rollback", "execute", "--json")  # fmt: skip
    assert code == 1, out + err
    data = json.loads(out)
    assert data["decision"] == "rollback" and data["measured"] == 2
    assert [m["state"] for m in data["measurements"]] == ["successful", "failed"]
    assert data["measurements"][1]["values"] == {"test_gates.py::test_health": 503.0}
    assert "rolled back to v1: done" in data["reason"]
    assert project.marks.read_text() == "v1\n"
    assert "measurement 2 of 200: failed; failures 1 (limit 0)" in err


@pytest.mark.integration
def test_a_hung_python_gate_is_killed_at_the_deadline_and_counts_as_an_error(
    project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": OK, "/unwatched": OK, "/metrics": OK})
    gates(project, target.url, watch_errors=True)
    (project.path / "hang").write_text("")
    table = watch_table(errors=0).replace('gate_timeout = "60s"', 'gate_timeout = "5s"')
    project.config("", watch=table)
    code, out, err = project.cli("watch", "--env", "staging", "--version", "v2",
                                 "--previous-version", "v1", "--rollback", "execute")  # fmt: skip
    assert code == 1, out + err
    assert "measurement 1 of 200: error; failures 0 (limit 0), errors in a row 1 (limit 0); " \
           "test_health=error, error-rate=error" in out  # fmt: skip
    assert ("error-rate: the Python gates' run did not end within 5 s (gate_timeout): killed"
            in out)  # fmt: skip
    assert not project.marks.exists()  # no evidence against the release: never a rollback
    assert [h.decision for h in project.records("hold")] == ["on"]


@pytest.mark.integration
def test_gates_that_cannot_be_collected_are_an_error_at_each_measurement(
    project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": OK, "/unwatched": OK, "/metrics": OK})
    gates(project, target.url)
    (project.path / "test_broken.py").write_text("import pytest\n\ndef test_x(:\n")
    project.config(health(target.url), watch=watch_table(errors=1))
    code, out, err = project.cli("watch", "--env", "staging", "--version", "v2")
    assert code == 1, out + err
    first = out.splitlines()[0]
    assert first.startswith(
        "watch staging: measurement 1 of 200: error; failures 0 (limit 0), errors in a row 1 "
        "(limit 1); health="
    )
    assert first.endswith(" ms, python-gates=error")
    assert (
        "staging::python-gates: the Python gates marked watch=True could not be collected: "
        "1 collection error(s): test_broken.py: " in out
    )
    assert "decision: BLOCK: 2 measurements in a row could not measure" in out
    assert not project.records("rollback")


@pytest.mark.integration
def test_python_gates_false_starts_no_pytest(project: Project, servers: Servers) -> None:
    target = servers.https({"/health": OK})
    (project.path / "test_broken.py").write_text("import pytest\n\ndef test_x(:\n")
    table = watch_table(duration="0.1s").replace(" }", ", python_gates = false }")
    project.config(health(target.url), watch=table)
    code, out, err = project.cli("watch", "--env", "staging", "--version", "v2")
    assert code == 0, out + err
    assert "decision: PROMOTE: watched 2 measurements" in out and "python-gates" not in out


@pytest.mark.integration
def test_sigterm_while_the_python_gates_run_abandons_the_measurement_and_kills_them(
    project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": OK, "/unwatched": OK, "/metrics": OK})
    gates(project, target.url, watch_errors=True)
    (project.path / "hang").write_text("")
    project.config("", watch=watch_table())
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_promotion.cli", "watch", "--env", "staging",
         "--version", "v2", "--previous-version", "v1", "--rollback", "execute"],
        cwd=project.path, env=child_environ(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    hanging = project.path / "hanging"
    deadline = time.monotonic() + 120
    while not hanging.exists() or not hanging.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, "the gate never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1, out
    assert (
        "decision: BLOCK: the watch ended incomplete (SIGTERM received) after measurement 0 "
        "of 200: a watch cut short is never a promote" in out
    )
    assert not project.records("measurement")  # abandoned, not counted as an error
    assert not project.records("hold") and not project.marks.exists()
    gate_pid = int(hanging.read_text())
    for _ in range(100):  # the child pytest and everything it started are gone
        try:
            os.kill(gate_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the hung gate (pid {gate_pid}) was left running")


@pytest.mark.integration
def test_a_secret_in_a_watched_gate_s_failure_is_masked_everywhere_the_watch_writes(
    project: Project, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-watch-token-1234"
    monkeypatch.setenv("PROMOTION_WATCH_TOKEN", secret)
    (project.path / "test_login.py").write_text(
        "import os\n\nimport pytest\n\n\n@pytest.mark.staging\n"
        "@pytest.mark.gate(watch=True, name=f\"login-{os.environ['PROMOTION_WATCH_TOKEN']}\")\n"
        "def test_login(gate):\n"
        "    token = os.environ['PROMOTION_WATCH_TOKEN']\n"
        "    gate.measure(f'{token} rejected', unit='')\n"
        "    assert False, f'login with {token} refused'\n"
    )  # fmt: skip
    project.config('vars = { token = "${PROMOTION_WATCH_TOKEN}" }\n', watch=watch_table(errors=0))
    code, out, err = project.cli("watch", "--env", "staging", "--version", "v2", "--json")
    assert code == 1, out + err
    data = json.loads(out)
    assert data["decision"] == "block"  # a failed gate whose trigger is block: held
    assert data["measurements"][0]["state"] == "failed"
    assert secret not in out + err
    stored = json.dumps([r.body for r in project.records()])
    assert "login with" in stored and secret not in stored


@pytest.mark.integration
def test_watch_must_be_true_or_false(pytester: pytest.Pytester, gate_project: Project) -> None:
    gate_project.config("")
    pytester.makepyfile(test_typo="""
        import pytest

        @pytest.mark.staging
        @pytest.mark.gate(watch="yes")
        def test_metric():
            pass
    """)  # fmt: skip
    result = gate_run(pytester)
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*test_typo.py::test_metric: @pytest.mark.gate(watch='yes'): expected True or False*"]
    )


@pytest.mark.parametrize(
    ("gate", "state", "measured"),
    [
        ({"outcome": "passed", "measured": "12.5 ms"}, "successful", 12.5),
        ({"outcome": "failed", "message": "g: 503 > 299", "measured": "503"}, "failed", 503.0),
        ({"outcome": "failed", "message": "g: no data (None)"}, "inconclusive", None),
        ({"outcome": "failed", "message": "g: not a number ('x') to compare"}, "error", None),
        ({"outcome": "skipped", "message": "no target"}, "inconclusive", None),
        ({"outcome": "error", "message": "fixture"}, "error", None),
        ({"outcome": "not run"}, "error", None),
        ({"outcome": "passed", "measured": "green"}, "successful", "green"),
    ],
)
def test_each_outcome_of_a_python_gate_is_classified(
    gate: dict[str, object], state: str, measured: object
) -> None:
    from pytest_promotion.watch.pygates import classify_gate

    result = classify_gate({"name": "g", **gate}, ())
    assert (result.state, result.measured) == (state, measured)


def test_what_a_python_gate_recorded_is_masked(tmp_path: Path) -> None:
    from pytest_promotion.watch.pygates import classify_gate

    result = classify_gate({"name": "g", "outcome": "failed", "message": "token s3cr3t-value",
                            "measured": "s3cr3t-value"}, ("s3cr3t-value",))  # fmt: skip
    assert "s3cr3t" not in result.message and "s3cr3t" not in str(result.measured)
