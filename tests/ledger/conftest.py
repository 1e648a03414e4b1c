"""Fixtures of the ledger's tests: a gate project in a pytester directory, its ledger,
and the service fixtures (a private PostgreSQL with a password and TLS) reused from
tests/services."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pytest_promotion.checks.policy
import pytest_promotion.ledger.pg_store
import pytest_promotion.ledger.plugin  # noqa: F401
from pytest_promotion.cli import main as promotion_main
from tests.services.conftest import (  # noqa: F401 - fixtures reused here
    PostgresServer,
    TlsFiles,
    _PgCluster,
    pg_cluster,
    postgres_server,
    tls_files,
)
from tests.support import child_environ

GATES = """
import os, time, pathlib
import pytest

@pytest.mark.dev
@pytest.mark.gate(trigger="rollback")
def test_health():
    assert os.environ.get("GATE_FAIL") != "1", "health endpoint returned 503"

@pytest.mark.dev
def test_hold():
    ready = os.environ.get("GATE_READY")
    if ready:
        pathlib.Path(ready).write_text("ready")
        until = pathlib.Path(os.environ["GATE_RELEASE"])
        deadline = time.monotonic() + 60
        while not until.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
"""


class Project:
    """A gate project: promotion.toml, a gate module, its SQLite ledger."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path
        pytester.makepyfile(test_gates=GATES)

    def config(self, text: str) -> None:
        self.pytester.path.joinpath("promotion.toml").write_text(text)

    def run(self, env: str, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest("-p", "no:cacheprovider", f"--env={env}", *args)

    def popen(self, env: str, *args: str, **environ: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--env={env}", *args],
            cwd=self.path, env=child_environ(**environ), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def cli(self, *argv: str) -> tuple[int, str, str]:
        """Run the promotion command in this directory: (exit code, stdout, stderr)."""
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = promotion_main([*argv, "--rootdir", str(self.path)])
            except SystemExit as exc:  # argparse's usage errors
                code = int(exc.code or 0)
        return code, out.getvalue(), err.getvalue()

    def cli_json(self, *argv: str) -> Any:
        code, out, err = self.cli(*argv, "--json")
        assert code == 0, err
        return json.loads(out)

    @property
    def db(self) -> Path:
        return self.path / ".promotion" / "ledger.sqlite3"

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(statement, params).fetchall()

    def age(self, hours: float) -> None:
        """Move every record ``hours`` into the past, as if written by earlier runs."""
        rows = self.sql("SELECT id, recorded_at FROM records")
        from datetime import timedelta

        from pytest_promotion.ledger.model import format_time, parse_time

        for rid, at in rows:
            self.sql(
                "UPDATE records SET recorded_at = ? WHERE id = ?",
                (format_time(parse_time(at) - timedelta(hours=hours)), rid),
            )

    def records(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.cli_json("history", "--limit", "1000")
        return data


def wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER", "PROMOTION_LEDGER",
                 "PROMOTION_ARTIFACT", "GITHUB_RUN_ID", "CI_JOB_URL", "BUILD_URL", "GATE_FAIL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return Project(pytester)


def fresh_database(server: PostgresServer, **params: str) -> str:
    """A new database on the shared test server: the URL of an empty ledger."""
    import os

    name = "ledger_" + os.urandom(4).hex()
    with psycopg.connect(server.url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url(**params).replace(f":{server.port}/postgres", f":{server.port}/{name}", 1)


class PrivatePostgres:
    """A PostgreSQL server of one test's own, which the test may stop and start."""

    def __init__(
        self, cluster: _PgCluster, server: PostgresServer, datadir: Path, tls: str
    ) -> None:
        self.cluster, self.server, self.datadir, self.tls = cluster, server, datadir, tls

    def start(self) -> None:
        from tests.services.conftest import _pg_ready, wait_until

        self.cluster.start(self.datadir, self.server.port, self.tls)
        wait_until("postgres", lambda: _pg_ready(self.server))

    def stop(self) -> None:
        pg_ctl = str(self.cluster.bin / "pg_ctl")
        self.cluster.run(pg_ctl, "-D", str(self.datadir), "-m", "immediate", "-w", "stop")


@pytest.fixture
def private_postgres(
    pg_cluster: _PgCluster,  # noqa: F811 - the fixtures above
    tls_files: TlsFiles,  # noqa: F811
) -> Iterator[PrivatePostgres]:
    """A PostgreSQL of this test's own (password, TLS), which the test may stop and start."""
    import os

    from tests.support import free_port

    password = "pg-Pa55-" + os.urandom(6).hex()
    datadir = pg_cluster.root / f"private-{os.urandom(3).hex()}"
    pwfile = pg_cluster.write(f"pw-{datadir.name}", password + "\n")
    pg_cluster.run(str(pg_cluster.bin / "initdb"), "-D", str(datadir), "-U", "postgres",
                   "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "--no-instructions")  # fmt: skip
    port = free_port()
    tls = pg_cluster.server_tls(tls_files)
    server = PostgresServer(port, password, datadir, tls_files.ca)
    control = PrivatePostgres(pg_cluster, server, datadir, tls)
    control.start()
    yield control
    with contextlib.suppress(BaseException):
        control.stop()
