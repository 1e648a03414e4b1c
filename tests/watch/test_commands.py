"""``promotion watch`` and ``promotion release-hold``: exit codes, --json, one-line errors."""

from __future__ import annotations

import json

import pytest

from tests.http.conftest import Servers
from tests.watch.conftest import Flaky, Project
from tests.watch.test_watch import health

pytestmark = pytest.mark.integration


def test_promotion_watch_exits_0_after_a_healthy_window(project: Project, servers: Servers) -> None:
    target = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    project.config(health(target.url), watch='watch = { duration = "0.2s", interval = "0.05s" }')
    code, out, err = project.cli("watch", "--env", "staging", "--version", "v2")
    assert code == 0, err
    assert "watch staging: measurement 4 of 4: successful" in out
    assert "decision: PROMOTE: watched 4 measurements over 0.2 s: 0 failed (limit 0)" in out
    assert "promotion ledger: watch " in out


def test_promotion_watch_json_rollback_exits_1(project: Project, servers: Servers) -> None:
    target = servers.https({"/health": Flaky(healthy=0)})
    project.config(health(target.url))
    code, out, err = project.cli(
        "watch", "--env", "staging", "--version", "v2", "--previous-version", "v1",
        "--duration", "1s", "--interval", "0.05s", "--rollback", "execute", "--json",
    )  # fmt: skip
    assert code == 1
    data = json.loads(out)
    assert data["decision"] == "rollback" and data["measured"] == 1
    assert data["rollback"]["result"]["returncode"] == 0
    assert data["measurements"][0]["state"] == "failed"
    assert "measurement 1 of 20: failed" in err  # progress on stderr with --json
    assert project.marks.read_text() == "v1\n"


def test_promotion_watch_prints_the_rollback_unless_executed(
    project: Project, servers: Servers
) -> None:
    target = servers.https({"/health": Flaky(healthy=0)})
    project.config(health(target.url))
    code, out, _ = project.cli("watch", "--env", "staging", "--version", "v2",
                               "--previous-version", "v1", "--duration", "1s",
                               "--interval", "0.05s")  # fmt: skip
    assert code == 1
    assert (
        "; rollback command (not executed: not asked to execute it (--rollback execute)): " in out
    )
    assert not project.marks.exists()
    # the version has a rollback against it all the same: no longer a good release there
    assert [(r.version, r.decision) for r in project.records("rollback")] == [
        ("v2", "not executed")
    ]


def test_watch_settings_mistakes_are_one_line_usage_errors(project: Project) -> None:
    project.config(health("https://localhost:1"), watch='watch = { duration = "30x" }')
    code, _, err = project.cli("watch", "--env", "staging")
    assert code == 4
    assert err.strip() == (
        "ERROR: promotion.toml: [environments.staging.watch] key 'duration': expected a "
        "duration like 90m, 24h or 7d, found '30x'"
    )
    project.config(health("https://localhost:1"))
    code, _, err = project.cli("watch", "--env", "staging")
    assert (code, err.strip()) == (
        4, "ERROR: promotion.toml: [environments.staging] has no 'watch' table: give --duration"
    )  # fmt: skip
    code, _, err = project.cli("watch", "--env", "staging", "--duration", "1s",
                               "--interval", "0.001s")  # fmt: skip
    assert code == 4 and "key 'interval': expected at least 0.01 s, found 0.001 s" in err
    code, _, err = project.cli("watch", "--env", "staging", "--duration", "8d")
    assert code == 4 and "expected at most 7d, found '8d'" in err
    project.config(health("https://localhost:1"), watch="watch = { failure_limit = -1 }")
    code, _, err = project.cli("watch", "--env", "staging")
    assert code == 4 and "key 'failure_limit': expected an integer >= 0, found -1" in err


def test_release_hold_needs_a_hold_and_a_reason(project: Project) -> None:
    project.config("")
    code, _, err = project.cli("release-hold", "--env", "staging", "--reason", "x")
    assert (code, err.strip()) == (1, "ERROR: staging is not on hold: nothing to release")
    code, _, err = project.cli("release-hold", "--env", "staging", "--reason", " ")
    assert code == 4 and "--reason: expected why" in err


def test_status_shows_the_hold_a_watch_put_on(project: Project, servers: Servers) -> None:
    target = servers.https({"/health": Flaky(healthy=0)})
    project.config(health(target.url))
    assert project.watch(duration="0.1s", interval="0.05s", previous="v1")[0].decision == "rollback"
    code, out, err = project.cli("status", "--json")
    assert code == 0, err
    staging = next(r for r in json.loads(out) if r["environment"] == "staging")
    assert staging["hold"]["record"] == project.records("hold")[0].id
    code, out, _ = project.cli("status")
    assert "staging: on hold since " in out and "promotion release-hold lifts it" in out
