"""The watch window against real servers: a healthy HTTPS target, one that turns
unhealthy, a Prometheus that goes away, an interrupt, the ledger off, the hold."""

from __future__ import annotations

import pytest

from tests.http.conftest import Servers
from tests.watch.conftest import Flaky, OwnPrometheus, Project


def health(url: str, name: str = "health") -> str:
    return f"""
[[environments.staging.checks]]
name = "{name}"
http = "{url}/health"
expect_status = 200
"""


def test_a_healthy_target_is_promoted_after_the_whole_window(
    project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    project.config(health(target.url))
    result, lines = project.watch(duration="0.25s", interval="0.05s")
    assert result.decision == "promote", result.reason
    assert result.measured == 5 and result.complete
    assert lines[0].startswith("watch staging: measurement 1 of 5: successful; failures 0")
    assert "health=" in lines[-1]
    measurements = project.records("measurement")
    assert [r.body["n"] for r in measurements] == [1, 2, 3, 4, 5]
    assert all(r.decision == "successful" for r in measurements)
    assert all(r.body["watch"] == result.watch_record for r in measurements)
    assert [r.decision for r in project.records("watch")] == ["running", "promote"]
    assert not project.records("hold") and not project.marks.exists()


@pytest.mark.integration
def test_a_target_turning_unhealthy_is_rolled_back_once_and_held(
    project: Project, servers: Servers
) -> None:
    flaky = Flaky(healthy=3)
    target = servers.https({"/health": flaky})
    project.config(health(target.url))
    result, lines = project.watch(duration="1s", interval="0.05s", previous="v1")
    assert result.decision == "rollback"
    assert result.measured == 4  # the first 503, failure_limit 0
    assert (
        "1 failed measurements (failure_limit 0), the last at measurement 4 of 20" in result.reason
    )
    assert "staging::health" in result.reason and "rolled back to v1: done" in result.reason
    assert project.marks.read_text() == "v1\n"
    assert lines[3].startswith("watch staging: measurement 4 of 20: failed; failures 1")
    rollback = project.records("rollback")
    assert [(r.version, r.decision, r.body["to_version"]) for r in rollback] == [
        ("v2", "done", "v1")
    ]
    assert rollback[0].body["automatic"] is True
    holds = project.records("hold")
    assert [h.decision for h in holds] == ["on"]
    assert result.hold is not None and "release-hold --env staging" in result.hold

    # the next watch that fails: no second automatic rollback (no flapping)
    again, _ = project.watch(duration="0.1s", interval="0.05s", previous="v1")
    assert again.decision == "rollback"
    assert "not rolled back automatically: staging is on hold since" in again.reason
    assert project.marks.read_text() == "v1\n"

    code, out, err = project.cli("release-hold", "--env", "staging", "--reason", "fixed in v3")
    assert code == 0, err
    assert "staging: hold" in out and "released by" in out
    assert project.cli("release-hold", "--env", "staging", "--reason", "again")[0] == 1
    third, _ = project.watch(duration="0.1s", interval="0.05s", previous="v1")
    assert "rolled back to v1: done" in third.reason
    assert project.marks.read_text() == "v1\nv1\n"


@pytest.mark.integration
def test_a_prometheus_going_away_blocks_and_holds_never_rolls_back(
    project: Project, own_prometheus: OwnPrometheus
) -> None:
    project.config(f"""
[[environments.staging.checks]]
name = "scrapes"
prometheus = "{own_prometheus.url}"
query = 'sum(up)'
min = 1
""")

    def take_it_away(n: int) -> None:
        if n == 2:
            own_prometheus.stop()

    result, lines = project.watch(duration="1s", interval="0.05s", consecutive_error_limit=2,
                                  on_line=take_it_away)  # fmt: skip
    assert result.decision == "block"
    assert result.measured == 5  # 2 good, then 3 errors in a row > 2
    assert [line.split(": ")[2].split(";")[0] for line in lines] == [
        "successful", "successful", "error", "error", "error",
    ]  # fmt: skip
    assert "3 measurements in a row could not measure (consecutive_error_limit 2)" in result.reason
    assert "never a pass: held" in result.reason
    assert not project.marks.exists() and not project.records("rollback")
    assert [h.decision for h in project.records("hold")] == ["on"]
    assert [r.decision for r in project.records("measurement")] == [
        "successful", "successful", "error", "error", "error",
    ]  # fmt: skip


def test_an_interrupt_ends_the_watch_incomplete_with_nothing_lost(
    project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    project.config(health(target.url))
    result, _ = project.watch(duration="10s", interval="0.05s", stop_after=3)
    assert result.decision == "block" and not result.complete
    assert result.reason.startswith("the watch ended incomplete (SIGTERM received) after "
                                    "measurement 3 of 200")  # fmt: skip
    assert len(project.records("measurement")) == 3
    assert [r.decision for r in project.records("watch")] == ["running", "block"]
    assert not project.records("hold")


@pytest.mark.integration
def test_with_the_ledger_off_it_rolls_back_once_and_says_no_hold(
    project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": Flaky(healthy=1)})
    project.config(health(target.url), promotion="ledger = false")
    result, _ = project.watch(duration="1s", interval="0.05s", previous="v1")
    assert result.decision == "rollback" and result.measured == 2
    assert project.marks.read_text() == "v1\n"
    assert result.hold == "no hold could be recorded: the ledger is off (ledger = false)"
    assert result.hold in result.warnings
    assert not (project.path / ".promotion").exists()


def test_an_unreachable_ledger_spools_every_measurement(project: Project, servers: Servers) -> None:
    from tests.support import free_port

    target = servers.https({"/health": Flaky(healthy=2)})
    down = f"postgresql://u:secret-pw@127.0.0.1:{free_port()}/ledger?sslmode=disable"
    project.config(health(target.url), promotion=f'ledger = "{down}"')
    result, _ = project.watch(duration="1s", interval="0.05s", previous="v1")
    assert result.decision == "rollback" and result.measured == 3
    assert project.marks.read_text() == "v1\n"  # it still rolls back, once
    assert result.hold is not None
    assert result.hold.startswith("no hold could be recorded: the ledger cannot be reached (")
    spooled = sorted((project.path / ".promotion" / "spool").glob("*.json"))
    # watch start, 3 measurements, the rollback, the watch's end: nothing lost
    assert len(spooled) == 6
    assert any("6 watch record(s) could not be written" in w for w in result.warnings)
    assert all("secret-pw" not in p.read_text() for p in spooled)
    assert all("secret-pw" not in w for w in result.warnings)
