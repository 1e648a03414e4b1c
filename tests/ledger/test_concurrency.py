"""One promotion at a time per environment, with real concurrent pytest processes sharing
one SQLite ledger: the second run waits, then proceeds or blocks on lock_timeout; a
SIGKILLed holder does not keep its lease; runs on other environments are not held up."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.ledger.conftest import Project, wait_for

CONFIG = """
[promotion]
environments = ["dev", "qa", "staging", "prod"]
lock_timeout = "{timeout}"
"""


def hold(
    project: Project, env: str = "staging", version: str = "v1.4.1"
) -> tuple[subprocess.Popen[str], Path]:
    ready, release = project.path / f"ready-{env}", project.path / f"release-{env}"
    proc = project.popen(env, f"--promotion-version={version}", GATE_READY=str(ready),
                         GATE_RELEASE=str(release), GITHUB_ACTOR="alice",
                         CI_JOB_URL="https://ci.example/run/7", PYTHONUNBUFFERED="1")  # fmt: skip
    wait_for(ready)
    return proc, release


@pytest.mark.integration
def test_a_second_run_blocks_after_lock_timeout_naming_the_holder(project: Project) -> None:
    project.config(CONFIG.format(timeout="1s"))
    first, release = hold(project)
    try:
        second = project.run("staging", "--promotion-version=v1.5.0")
    finally:
        release.touch()
        out, _ = first.communicate(timeout=60)
    assert second.ret == 1
    second.stdout.fnmatch_lines([
        "promotion: waiting for the lease: staging is being promoted by alice (v1.4.1, run "
        "https://ci.example/run/7) since ??:?? (0 s of 1 s)",
        "decision: BLOCK v1.5.0 -> staging",
        "*reason: staging is being promoted by alice (v1.4.1, run https://ci.example/run/7) since "
        "??:??: waited 1 s (lock_timeout)",
    ])  # fmt: skip
    assert first.returncode == 0, out
    records = {r["version"]: r for r in project.records()}
    assert records["v1.4.1"]["decision"] == "promote"
    assert records["v1.5.0"]["decision"] == "block"


@pytest.mark.integration
def test_a_second_run_waits_and_then_proceeds(project: Project) -> None:
    project.config(CONFIG.format(timeout="60s"))
    first, release = hold(project)
    second = project.popen("staging", "--promotion-version=v1.5.0", PYTHONUNBUFFERED="1")
    assert second.stdout is not None
    seen = []
    for line in second.stdout:
        seen.append(line)
        if "waiting for the lease" in line:
            break
    release.touch()
    rest, _ = second.communicate(timeout=60)
    first.communicate(timeout=60)
    assert "staging is being promoted by alice (v1.4.1" in seen[-1]
    assert second.returncode == 0, "".join(seen) + rest
    assert [r["version"] for r in project.records()] == ["v1.4.1", "v1.5.0"]


@pytest.mark.integration
def test_a_sigkilled_run_does_not_keep_its_lease(project: Project) -> None:
    project.config(CONFIG.format(timeout="30s"))
    killed, _ = hold(project)
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=30)
    after = project.run("staging", "--promotion-version=v1.5.0")
    assert after.ret == 0
    assert "waiting for the lease" not in after.stdout.str()
    # the killed run left no record: nothing is invented for it
    assert [r["version"] for r in project.records()] == ["v1.5.0"]


@pytest.mark.integration
def test_four_concurrent_runs_on_other_environments_are_all_recorded(project: Project) -> None:
    project.config(CONFIG.format(timeout="60s"))
    runs = [project.popen(env, f"--promotion-version=v1.{i}.0")
            for i, env in enumerate(("dev", "qa", "staging", "prod"))]  # fmt: skip
    for proc in runs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    records = project.records()
    assert sorted((r["environment"], r["version"]) for r in records) == [
        ("dev", "v1.0.0"), ("prod", "v1.3.0"), ("qa", "v1.1.0"), ("staging", "v1.2.0")]  # fmt: skip


@pytest.mark.integration
def test_a_manual_rollback_refuses_an_environment_being_promoted(project: Project) -> None:
    project.config(
        CONFIG.format(timeout="30s")
        + '\n[environments.staging]\nrollback = ["true", "{previous_version}"]\n'
    )
    first, release = hold(project)
    try:
        code, _, err = project.cli("rollback", "--env", "staging", "--to", "v1.3.0", "--yes")
    finally:
        release.touch()
        first.communicate(timeout=60)
    assert code == 1
    assert err.startswith(
        "ERROR: staging is being promoted by alice (v1.4.1, run https://ci.example/run/7) since "
    )
    assert [r["kind"] for r in project.records()] == ["decision"]


def test_ledger_migrate_reports_the_schema_version(project: Project) -> None:
    project.config(CONFIG.format(timeout="30s"))
    assert project.cli_json("ledger", "migrate") == {"schema_version": 1, "tool_schema_version": 1}
