"""The promotion command over the ledger, and the policy gates it feeds: approvals bound to
identities, invalidation, the rollback command run and recorded, status, history, show."""

from __future__ import annotations

import sys

import pytest

from tests.ledger.conftest import Project

PROD = """
[promotion]
environments = ["dev", "staging", "prod"]

[environments.prod]
rollback = ["{python}", "-c", "import sys; print('deployed', sys.argv[1]); sys.exit(sys.argv[1] == 'v0.0.1')", "{previous_version}"]
"""


def with_checks(text: str) -> str:
    return PROD.replace("{python}", sys.executable) + text


APPROVAL = """
[[environments.prod.checks]]
name = "approved"
approval = true
approval_from_env = "RELEASE_APPROVER"
"""


def approve(
    project: Project, monkeypatch: pytest.MonkeyPatch, who: str, verb: str = "approve"
) -> int:
    monkeypatch.setenv("GITHUB_ACTOR", who)
    code, _, _ = project.cli(
        verb, "--env", "prod", "--version", "v1.4.0", "--by", who.title(), "--reason", "CAB-1"
    )
    monkeypatch.setenv("GITHUB_ACTOR", "carol")  # the actor of the gate runs
    return code


def test_an_approval_is_someone_elses_bound_to_the_version(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(with_checks(APPROVAL))
    monkeypatch.setenv("GITHUB_ACTOR", "carol")
    missing = project.run("prod", "--promotion-version=v1.4.0")
    assert missing.ret == 1
    missing.stdout.fnmatch_lines(["*prod approval missing for v1.4.0 (0 of 1)"])
    assert approve(project, monkeypatch, "carol") == 0
    own = project.run("prod", "--promotion-version=v1.4.0")
    assert own.ret == 1
    own.stdout.fnmatch_lines(["*carol cannot approve their own promotion (self_approval = false)"])
    assert approve(project, monkeypatch, "alice") == 0
    approved = project.run("prod", "--promotion-version=v1.4.0")
    assert approved.ret == 0
    approved.stdout.fnmatch_lines(["prod::approved * PASS"])
    other_version = project.run("prod", "--promotion-version=v1.4.1")
    assert other_version.ret == 1  # the approval was for v1.4.0
    assert approve(project, monkeypatch, "alice", "revoke") == 0
    assert project.run("prod", "--promotion-version=v1.4.0").ret == 1
    monkeypatch.setenv("RELEASE_APPROVER", "dave")  # the CI's own approval step
    ci = project.run("prod", "--promotion-version=v1.4.0")
    assert ci.ret == 0
    gates = project.cli_json("show", project.records()[-1]["id"])["body"]["gates"]
    assert gates[-1]["message"] == "v1.4.0 approved for prod by dave (from RELEASE_APPROVER)"
    assert approve(project, monkeypatch, "bob", "reject") == 0
    rejected = project.run("prod", "--promotion-version=v1.4.0")
    assert rejected.ret == 1
    rejected.stdout.fnmatch_lines(["*v1.4.0 was rejected for prod by bob at *: CAB-1"])
    approval = project.cli_json("history", "--version", "v1.4.0")[1]
    assert approval["kind"] == "approval" and approval["actor"] == "carol"
    assert approval["body"] == {
        "actor_source": "GITHUB_ACTOR",
        "by": "Carol",
        "reason": "CAB-1",
        "against": False,
        "summary": "",
    }


def test_an_approval_never_replaces_another_policy_gate(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(
        with_checks(
            APPROVAL
            + '\n[[environments.prod.checks]]\nname = "after-staging"\nrequires_previous = true\n'
        )
    )
    monkeypatch.setenv("GITHUB_ACTOR", "carol")
    assert approve(project, monkeypatch, "alice") == 0
    result = project.run("prod", "--promotion-version=v1.4.0")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["prod::approved * PASS", "prod::after-staging * FAIL"])


def test_revoking_nothing_and_approving_an_invalidated_version_are_refused(
    project: Project,
) -> None:
    project.config(with_checks(""))
    code, _, err = project.cli("revoke", "--env", "prod", "--version", "v1.4.0", "--by", "x")
    assert (code, err) == (
        1,
        "ERROR: nothing to revoke: no approval or reject of v1.4.0 for prod\n",
    )
    assert project.cli("invalidate", "--version", "v1.4.0", "--reason", "INC-42")[0] == 0
    code, _, err = project.cli("approve", "--env", "prod", "--version", "v1.4.0", "--by", "x")
    assert code == 1 and "invalidated" in err and "INC-42" in err
    assert project.cli("approve", "--env", "nope", "--version", "v1", "--by", "x")[0] == 4
    assert project.cli("approve", "--env", "prod")[0] == 4  # argparse: missing --version, one line


def test_invalidate_stops_requires_previous_downstream(project: Project) -> None:
    project.config(
        with_checks("")
        + '\n[[environments.staging.checks]]\nname = "after-dev"\nrequires_previous = true\n'
    )
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 0
    assert project.run("staging", "--promotion-version=v1.4.0").ret == 0
    assert (
        project.cli(
            "invalidate", "--version", "v1.4.0", "--env", "dev", "--reason", "bad migration"
        )[0]
        == 0
    )
    again = project.run("staging", "--promotion-version=v1.4.0")
    assert again.ret == 1
    again.stdout.fnmatch_lines(["*v1.4.0 was invalidated in dev at * by *: bad migration"])


def test_rollback_command_runs_records_and_moves_the_version_back(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(with_checks(""))
    assert project.run("prod", "--promotion-version=v1.3.0").ret == 0
    assert project.run("prod", "--promotion-version=v1.4.0").ret == 0
    code, out, _ = project.cli("rollback", "--env", "prod", "--dry-run")
    assert code == 0 and out.strip().startswith("would run: ") and out.strip().endswith(" v1.3.0")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = project.cli("rollback", "--env", "prod")
    assert (code, err) == (
        4,
        "ERROR: not a terminal: pass --yes to run the rollback without confirmation\n",
    )
    code, out, _ = project.cli("rollback", "--env", "prod", "--yes")
    assert code == 0, out
    assert "deployed v1.3.0" in out and "rollback of prod to v1.3.0: done; recorded as" in out
    status = {row["environment"]: row for row in project.cli_json("status")}
    assert status["prod"]["version"] == "v1.3.0"
    assert status["prod"]["last_known_good"] == "v1.3.0"
    code, out, _ = project.cli("rollback", "--env", "prod", "--to", "v0.0.1", "--yes")
    assert code == 1 and "FAILED (exit 1)" in out
    kinds = [(r["kind"], r["decision"]) for r in project.records()]
    assert kinds[-2:] == [("rollback", "done"), ("rollback", "failed")]


def test_the_plugins_executed_rollback_is_its_own_record(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(with_checks(""))
    assert project.run("prod", "--promotion-version=v1.3.0").ret == 0
    monkeypatch.setenv("GATE_FAIL", "1")
    result = project.run("prod", "--promotion-version=v1.4.0", "--promotion-rollback=execute")
    assert result.ret == 1
    decision, rollback = project.records()[-2:]
    assert (decision["kind"], decision["decision"]) == ("decision", "rollback")
    assert (rollback["kind"], rollback["decision"], rollback["version"]) == (
        "rollback",
        "done",
        "v1.4.0",
    )
    body = project.cli_json("show", rollback["id"])["body"]
    assert body["to_version"] == "v1.3.0" and body["decision_record"] == decision["id"]
    assert body["result"]["returncode"] == 0


def test_history_show_and_status_answer_in_tables_and_json(project: Project) -> None:
    project.config(with_checks("") + '\n[[environments.staging.checks]]\nname = "after-dev"\nrequires_previous = true\nsoak = "24h"\n'
                   '\n[[environments.prod.checks]]\nname = "ok"\napproval = true\n')  # fmt: skip
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 0
    project.age(20)
    code, out, _ = project.cli("status")
    assert code == 0
    assert "v1.4.0: staging: v1.4.0 has soaked 20 h of 24 h in dev" in out
    code, out, _ = project.cli("history", "--env", "dev")
    assert code == 0 and "v1.4.0   promote" in out
    rid = project.records()[0]["id"]
    code, out, _ = project.cli("show", rid[:8])
    assert (
        code == 0
        and f"record {rid} (decision)" in out
        and "test_gates.py::test_health  passed" in out
    )
    assert project.cli("show", "ffffffff")[0] == 1
    assert project.cli("show", "ab")[0] == 4
    code, out, _ = project.cli("ledger", "export", "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 1


@pytest.mark.integration
def test_policy_gates_reach_xdist_workers(project: Project) -> None:
    project.config(
        with_checks("")
        + '\n[[environments.staging.checks]]\nname = "after-dev"\nrequires_previous = true\n'
    )
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 0
    result = project.run("staging", "--promotion-version=v1.4.0", "-n", "2")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["staging::after-dev * PASS"])


def test_no_downgrade_version_pattern_same_artifact_rollback_ready(project: Project) -> None:
    project.config(
        with_checks(
            """
[[environments.prod.checks]]
name = "no-downgrade"
no_downgrade = true

[[environments.prod.checks]]
name = "semver"
version_pattern = "semver"

[[environments.prod.checks]]
name = "can-roll-back"
rollback_ready = true
rollback_check = ["{python}", "-c", "import sys; sys.exit(0)", "{previous_version}"]

[[environments.staging.checks]]
name = "same-bits"
same_artifact = true
""".replace("{python}", sys.executable)
        )
    )
    first = project.run("prod", "--promotion-version=v1.4.1")
    assert first.ret == 1
    first.stdout.fnmatch_lines(["*no last-known-good version in prod to roll back to*"])
    config = project.path.joinpath("promotion.toml").read_text()
    project.config(
        config.replace("[environments.prod]\n", "[environments.prod]\nallow_waivers = true\n")
    )
    assert (
        project.run(
            "prod", "--promotion-version=v1.4.1", "--waive=prod::can-roll-back=first release"
        ).ret
        == 0
    )
    project.config(config)
    down = project.run("prod", "--promotion-version=v1.4.0")
    assert down.ret == 1
    down.stdout.fnmatch_lines(
        ["*v1.4.0 is lower than v1.4.1, in prod since *: no_downgrade refuses it*"]
    )
    ok = project.run("prod", "--promotion-version=v1.5.0")
    assert ok.ret == 0
    ok.stdout.fnmatch_lines(["prod::can-roll-back * PASS"])
    gates = project.cli_json("show", project.records()[-1]["id"])["body"]["gates"]
    assert gates[-1]["message"].startswith("rollback to v1.4.1 (record ")
    assert gates[-1]["message"].endswith(f"v1.4.1; rollback_check {sys.executable} exited 0")
    short_hash = project.run("prod", "--promotion-version=3f2a91c")
    short_hash.stdout.fnmatch_lines(["*3f2a91c is not a release version: expected semver*"])
    assert (
        project.run("dev", "--promotion-version=v2.0.0", "--promotion-artifact=sha256:aaa").ret == 0
    )
    other = project.run("staging", "--promotion-version=v2.0.0", "--promotion-artifact=sha256:bbb")
    assert other.ret == 1
    other.stdout.fnmatch_lines(
        [
            "*artifact sha256:bbb is not the one promoted in dev: v2.0.0 was promoted there with sha256:aaa*"
        ]
    )
    assert (
        project.run("staging", "--promotion-version=v2.0.0", "--promotion-artifact=sha256:aaa").ret
        == 0
    )
