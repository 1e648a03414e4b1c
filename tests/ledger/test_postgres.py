"""The shared PostgreSQL ledger: a real server on loopback with a password and TLS
verified against the test CA; two checkouts sharing it; its advisory-lock lease; the
server stopped in the middle of a run (spool, block, sync later, nothing written twice)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from typing import Any

import pytest

from tests.ledger.conftest import GATES, Project, fresh_database, wait_for
from tests.services.conftest import PostgresServer
from tests.support import child_environ

pytestmark = pytest.mark.integration

CONFIG = """
[promotion]
environments = ["dev", "staging", "prod"]
ledger = "{url}"
lock_timeout = "{timeout}"

[[environments.staging.checks]]
name = "after-dev"
requires_previous = true
"""


def configure(project: Project, url: str, timeout: str = "30s") -> None:
    project.config(CONFIG.replace("{url}", url).replace("{timeout}", timeout))


def test_two_checkouts_share_one_ledger_over_verified_tls(
    project: Project, postgres_server: PostgresServer, monkeypatch: Any, tmp_path_factory: Any
) -> None:
    url = fresh_database(postgres_server, sslrootcert=str(postgres_server.ca))
    monkeypatch.setenv("LEDGER_PASSWORD", postgres_server.password)
    configure(project, url.replace(postgres_server.password, "${LEDGER_PASSWORD}"))
    other = tmp_path_factory.mktemp("checkout-b")
    shutil.copy(project.path / "promotion.toml", other)
    (other / "test_gates.py").write_text(GATES)
    dev = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--env=dev", "--promotion-version=v1.4.0"],
        cwd=other, env=child_environ(LEDGER_PASSWORD=postgres_server.password), capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert dev.returncode == 0, dev.stdout
    assert postgres_server.password not in dev.stdout
    staging = project.run("staging", "--promotion-version=v1.4.0")
    assert staging.ret == 0
    staging.stdout.fnmatch_lines(
        [
            "staging::after-dev * PASS",
            "promotion ledger: recorded * in postgresql://postgres:***@127.0.0.1:*",
        ]
    )
    assert [r["environment"] for r in project.records()] == ["dev", "staging"]


def test_plaintext_is_said_and_an_unverified_server_is_unreachable(
    project: Project, postgres_server: PostgresServer
) -> None:
    configure(project, fresh_database(postgres_server, sslmode="disable"))
    plain = project.run("dev", "--promotion-version=v1.4.0")
    assert plain.ret == 0
    plain.stdout.fnmatch_lines(["warning: ledger postgresql://*: without TLS (sslmode=disable)"])
    configure(
        project, fresh_database(postgres_server)
    )  # the system store does not know the test CA
    env = {"SSL_CERT_FILE": "/nonexistent", "REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""}
    for k, v in env.items():
        os.environ[k] = v
    try:
        prod = project.run("prod", "--promotion-version=v1.4.0")
    finally:
        for k in env:
            os.environ.pop(k, None)
    assert prod.ret == 1
    prod.stdout.fnmatch_lines(
        [
            "decision: BLOCK v1.4.0 -> prod",
            "*reason: the ledger record was not written (ledger postgresql://*",
        ]
    )


def test_the_advisory_lock_holds_and_dies_with_a_killed_holder(
    project: Project, postgres_server: PostgresServer
) -> None:
    configure(
        project, fresh_database(postgres_server, sslrootcert=str(postgres_server.ca)), timeout="1s"
    )
    ready, release = project.path / "ready", project.path / "release"
    holder = project.popen("staging", "--promotion-version=v1.4.1", GATE_READY=str(ready),
                           GATE_RELEASE=str(release), GITHUB_ACTOR="alice")  # fmt: skip
    wait_for(ready)
    blocked = project.run("staging", "--promotion-version=v1.5.0")
    assert blocked.ret == 1
    blocked.stdout.fnmatch_lines(
        [
            "*reason: staging is being promoted by alice (v1.4.1, pid * on *) since ??:??: waited 1 s (lock_timeout)"
        ]
    )
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    configure(
        project,
        project.path.joinpath("promotion.toml").read_text().split('ledger = "')[1].split('"')[0],
        timeout="30s",
    )
    after = project.run("dev", "--promotion-version=v1.5.0")
    assert after.ret == 0
    freed = project.run("staging", "--promotion-version=v1.5.0")
    assert freed.ret == 0, freed.stdout.str()


def test_the_ledger_stopped_mid_run_spools_blocks_and_syncs_once(
    project: Project, private_postgres: Any
) -> None:
    server = private_postgres.server
    configure(project, server.url(sslrootcert=str(server.ca)))
    assert project.run("dev", "--promotion-version=v1.4.0").ret == 0
    ready, release = project.path / "ready", project.path / "release"
    run = project.popen(
        "prod", "--promotion-version=v1.4.0", GATE_READY=str(ready), GATE_RELEASE=str(release)
    )
    wait_for(ready)
    private_postgres.stop()
    release.touch()
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 1, out
    assert "decision: BLOCK v1.4.0 -> prod" in out
    assert "spooled to" in out and "(prod needs a record to promote)" in out
    assert server.password not in out
    code, _, err = project.cli("ledger", "sync")
    assert code == 4 and err.startswith("ERROR: ledger postgresql://postgres:***@127.0.0.1")
    private_postgres.start()
    assert project.cli("ledger", "sync")[1].startswith("synced 1 spooled record(s)")
    assert project.cli("ledger", "sync")[1].startswith("synced 0 spooled record(s)")
    records = project.records()
    assert [(r["environment"], r["decision"]) for r in records] == [
        ("dev", "promote"),
        ("prod", "promote"),
    ]
    shown = project.cli_json("show", records[1]["id"])
    assert shown["body"]["clock"].startswith("local: spooled")
