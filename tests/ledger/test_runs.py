"""Gate runs with the default SQLite ledger: what is recorded, the policy gates in the gate
table, {previous_version} from the ledger, a ledger that cannot be written."""

from __future__ import annotations

import subprocess

import pytest

from tests.ledger.conftest import Project
from tests.reports import read
from tests.support import free_port, require_binary

CHAIN = """
[promotion]
environments = ["dev", "staging", "prod"]

[environments.prod]
rollback = ["deploy", "--env", "{env}", "--version", "{previous_version}"]
"""

STAGING_POLICY = (
    CHAIN
    + """
[[environments.staging.checks]]
name = "after-dev"
requires_previous = true
soak = "24h"
"""
)


def test_every_run_is_recorded_with_its_evidence(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(CHAIN)
    monkeypatch.setenv("GITHUB_ACTOR", "carol")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/agent")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    result = project.run("dev", "--promotion-version=v1.4.0", "--promotion-artifact=sha256:abc")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["promotion ledger: recorded * in sqlite:///*ledger.sqlite3"])
    [record] = project.records()
    assert (record["environment"], record["version"], record["digest"], record["decision"],
            record["actor"]) == ("dev", "v1.4.0", "sha256:abc", "promote", "carol")  # fmt: skip
    full = project.cli_json("show", record["id"])
    assert full["body"]["actor_source"] == "GITHUB_ACTOR"
    assert full["body"]["run_url"] == "https://github.com/acme/agent/actions/runs/42"
    assert full["body"]["config_hash"].startswith("sha256:")
    assert {g["id"] for g in full["body"]["gates"]} == {
        "test_gates.py::test_health", "test_gates.py::test_hold"}  # fmt: skip
    assert full["body"]["started_at"] <= full["recorded_at"]


def test_junit_and_the_github_summary_name_the_record(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(STAGING_POLICY.replace('soak = "24h"\n', ""))
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 0
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = project.run("staging", "--promotion-version=v1.4.0", "--junitxml=gate.xml")
    assert result.ret == 0
    record = project.records()[-1]["id"]
    xml = (project.path / "gate.xml").read_text()
    assert f'name="promotion.ledger.record" value="{record}"' in xml
    assert (
        'name="promotion.ledger.evidence.staging::after-dev" value="v1.4.0 promoted in dev at'
        in xml
    )
    assert f"Ledger record `{record}` in `sqlite:///" in summary.read_text()


def test_the_record_carries_another_finalize_hooks_block(project: Project) -> None:
    project.config(CHAIN)
    project.pytester.makeconftest(
        "def pytest_promotion_finalize(config, decision):\n"
        "    return ['outside the change window']\n"
    )
    result = project.run("dev", "--promotion-version=v1.4.0")
    assert result.ret == 1
    [record] = project.records()
    assert record["decision"] == "block"
    body = project.cli_json("show", record["id"])["body"]
    assert body["reasons"] == ["outside the change window"]


def test_the_version_comes_from_git_describe(project: Project) -> None:
    git = require_binary("git")
    project.config(CHAIN)
    for argv in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                 ["tag", "v2.0.0"]):  # fmt: skip
        subprocess.run([git, *argv], cwd=project.path, check=True)
    assert project.run("dev", "--promotion-report=d.json").ret == 0
    record = project.cli_json("show", project.records()[0]["id"])
    assert record["version"] == "v2.0.0"
    report = read(project.path / "d.json")
    assert report["version"] == "v2.0.0"
    assert report["ledger"]["version_source"] == "git describe --tags --always"
    assert record["body"]["version_source"] == "git describe --tags --always"
    assert len(record["body"]["commit"]) == 40


def test_staging_requires_a_promote_in_dev_that_still_stands(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(STAGING_POLICY.replace('soak = "24h"\n', ""))
    blocked = project.run("staging", "--promotion-version=v1.4.0")
    assert blocked.ret == 1
    blocked.stdout.fnmatch_lines([
        "staging::after-dev * FAIL",
        "decision: BLOCK v1.4.0 -> staging",
        "*reason: gate staging::after-dev failed: v1.4.0 has no promote in dev: no dev decision recorded for it",
    ])  # fmt: skip
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 0
    passed = project.run("staging", "--promotion-version=v1.4.0", "--promotion-report=d.json")
    assert passed.ret == 0
    passed.stdout.fnmatch_lines(
        ["staging::after-dev * PASS", "decision: PROMOTE v1.4.0 -> staging"]
    )
    report = read(project.path / "d.json")
    dev_record = project.records()[-2]["id"]
    assert report["ledger"]["record"] == project.records()[-1]["id"]
    evidence = report["ledger"]["evidence"]["staging::after-dev"]
    assert (
        evidence.startswith("v1.4.0 promoted in dev at ")
        and f"(record {dev_record[:8]})" in evidence
    )
    assert report["gates"][-1]["message"] == evidence
    monkeypatch.setenv("GATE_FAIL", "1")
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 1  # a health failure in dev
    monkeypatch.delenv("GATE_FAIL")
    again = project.run("staging", "--promotion-version=v1.4.0")
    assert again.ret == 1
    again.stdout.fnmatch_lines([
        "*v1.4.0 has no promote in dev that still stands; the last dev decision for it was "
        "rollback at * (gate test_gates.py::test_health)",
    ])  # fmt: skip


def test_soak_on_the_ledgers_clock_and_a_block_that_resets_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(STAGING_POLICY)
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 0
    project.age(20)
    short = project.run("staging", "--promotion-version=v1.4.0")
    assert short.ret == 1
    short.stdout.fnmatch_lines(
        ["*v1.4.0 has soaked 20 h of 24 h in dev (promoted *): 4 h remaining"]
    )
    project.age(5)  # now 25 h
    assert project.run("staging", "--promotion-version=v1.4.0").ret == 0
    monkeypatch.setenv("GATE_FAIL", "1")
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 1
    monkeypatch.delenv("GATE_FAIL")
    project.age(2)
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 0
    project.age(3)  # the new promote is 3 h old; the first one 30 h
    reset = project.run("staging", "--promotion-version=v1.4.0")
    assert reset.ret == 1
    reset.stdout.fnmatch_lines(["*v1.4.0 has soaked 3 h of 24 h in dev*21 h remaining"])


def test_a_policy_failure_blocks_and_never_rolls_back(project: Project) -> None:
    policy_gate = """
[[environments.prod.checks]]
name = "after-staging"
requires_previous = true
"""
    project.config(CHAIN + policy_gate)
    result = project.run("prod", "--promotion-version=v1.4.0")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["decision: BLOCK v1.4.0 -> prod"])
    project.config(CHAIN + policy_gate + 'trigger = "rollback"\n')
    refused = project.run("prod", "--promotion-version=v1.4.0")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(
        ["*'after-staging': key 'trigger': a requires_previous check blocks, it never rolls back*"]
    )


def test_no_version_no_policy_pass(project: Project) -> None:
    project.config(STAGING_POLICY)
    result = project.run("staging")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*requires_previous: no version given: pass --promotion-version"])


def test_the_rollback_target_is_the_last_known_good_version(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.config(CHAIN)
    first = project.run("prod", "--promotion-version=v1.3.0")
    assert first.ret == 0
    monkeypatch.setenv("GATE_FAIL", "1")
    failed = project.run("prod", "--promotion-version=v1.4.0")
    assert failed.ret == 1
    failed.stdout.fnmatch_lines(["decision: ROLLBACK v1.4.0 -> prod",
                                 "rollback command: deploy --env prod --version v1.3.0"])  # fmt: skip
    # v1.4.0 failed in prod: a later failure of v1.5.0 goes back to v1.3.0, not v1.4.0
    again = project.run("prod", "--promotion-version=v1.5.0")
    again.stdout.fnmatch_lines(["rollback command: deploy --env prod --version v1.3.0"])
    record = project.cli_json("show", project.records()[-1]["id"])
    assert record["body"]["rollback_command"] == "deploy --env prod --version v1.3.0"
    assert record["body"]["previous_version"] == "v1.3.0"


def test_an_unreachable_ledger_spools_blocks_prod_and_syncs_once(project: Project) -> None:
    project.config(CHAIN)
    down = f"postgresql://u:secret-pw@127.0.0.1:{free_port()}/ledger?sslmode=disable"
    prod = project.run("prod", "--promotion-version=v1.4.0", f"--promotion-ledger={down}")
    assert prod.ret == 1
    prod.stdout.fnmatch_lines([
        "decision: BLOCK v1.4.0 -> prod",
        "*reason: the ledger record was not written (ledger postgresql://u:***@127.0.0.1:*"
        "spooled to *.promotion/spool/*.json: run `promotion ledger sync` when the ledger is back "
        "(prod needs a record to promote)",
    ])  # fmt: skip
    assert "secret-pw" not in prod.stdout.str()
    dev = project.run("dev", "--promotion-version=v1.4.0", f"--promotion-ledger={down}")
    assert dev.ret == 0  # dev has no policy gate and is not the last: a warning
    dev.stdout.fnmatch_lines(["warning: the ledger record was not written*", "decision: PROMOTE*"])
    assert len(list((project.path / ".promotion" / "spool").glob("*.json"))) == 2
    code, out, _ = project.cli("ledger", "sync")
    assert (code, out.strip()) == (
        0,
        f"synced 2 spooled record(s) to sqlite:///{project.db}; 0 already there",
    )
    assert project.cli("ledger", "sync")[1].startswith("synced 0 spooled")
    assert sorted(r["environment"] for r in project.records()) == ["dev", "prod"]
    for record in project.records():  # neither run could take its lease
        assert project.cli_json("show", record["id"])["body"]["lease"] == "not taken"
    project.config(STAGING_POLICY)  # the policy gate cannot read the ledger: it fails
    staging = project.run("staging", "--promotion-version=v1.4.0", f"--promotion-ledger={down}")
    assert staging.ret == 1
    staging.stdout.fnmatch_lines(
        [
            "*requires_previous: ledger postgresql://u:***@*: cannot connect*a policy gate never passes without its ledger"
        ]
    )


def test_ledger_false_turns_it_off_and_policy_gates_fail(project: Project) -> None:
    project.config(STAGING_POLICY.replace("[promotion]\n", "[promotion]\nledger = false\n"))
    result = project.run("staging", "--promotion-version=v1.4.0")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*the ledger is off (ledger = false): a policy gate cannot pass*"])
    assert not project.db.exists()
    assert project.run("dev").ret == 0


def test_a_bad_ledger_setting_is_a_one_line_usage_error(project: Project) -> None:
    project.config(CHAIN.replace("[promotion]\n", '[promotion]\nledger = "mysql://x"\n'))
    result = project.run("dev")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "ERROR: promotion.toml ?promotion? key 'ledger': 'mysql://x': expected sqlite:///PATH or postgresql://*"
        ]
    )


def test_a_bad_lock_timeout_is_a_one_line_usage_error(project: Project) -> None:
    project.config(CHAIN.replace("[promotion]\n", '[promotion]\nlock_timeout = "soon"\n'))
    result = project.run("dev")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "ERROR: promotion.toml: ?promotion? key 'lock_timeout': expected a duration like 90m, 24h or 7d, found 'soon'"
        ]
    )


def test_a_newer_schema_is_an_error_not_a_guess(project: Project) -> None:
    project.config(CHAIN)
    assert project.run("dev").ret == 0
    project.sql("INSERT INTO schema_version VALUES (99)")
    code, _, err = project.cli("history")
    assert code == 4
    assert "schema version 99 is newer than this pytest-promotion knows (1)" in err
    prod = project.run("prod", "--promotion-version=v1.0.0")
    assert prod.ret == 1
    prod.stdout.fnmatch_lines(["*schema version 99 is newer*spooled to*"])
