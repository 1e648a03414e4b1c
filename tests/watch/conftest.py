"""Fixtures of the watch's tests: real HTTPS targets (tests/http), a real Prometheus of
the test's own that it may stop (tests/services' recipe), a project directory with a
config, a SQLite ledger and a rollback command that leaves a mark."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_promotion.config import load_config
from pytest_promotion.ledger import Record, open_store
from pytest_promotion.watch import Stop, WatchRequest, WatchResult, parse_settings, run_watch
from tests.http.conftest import Handler, Servers, servers  # noqa: F401 - fixture reused
from tests.services.conftest import (  # noqa: F401 - fixtures reused
    PostgresServer,
    metrics_port,
    pg_cluster,
    postgres_server,
    prometheus_server,
    stop,
    tls_files,
    wait_until,
)
from tests.support import free_port, require_binary


@pytest.fixture(autouse=True)
def _ledger_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py turns the ledger off for every test; the watch needs it."""
    monkeypatch.delenv("PROMOTION_LEDGER", raising=False)


class Flaky:
    """A /health route healthy for the first ``healthy`` requests, then 503."""

    def __init__(self, healthy: int) -> None:
        self.healthy = healthy
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, handler: Handler) -> None:
        with self.lock:
            self.count += 1
            n = self.count
        if n <= self.healthy:
            handler.reply(200, {"status": "ok"})
        else:
            handler.reply(503, {"status": "error"})


ROLLBACK = (
    "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
    "p.write_text(p.read_text() + sys.argv[2] + '\\n' if p.exists() else sys.argv[2] + '\\n')"
)


@dataclass
class Project:
    path: Path
    ca_file: Path

    @property
    def marks(self) -> Path:
        return self.path / "rolled-back.txt"

    def config(self, checks: str, *, watch: str = "", promotion: str = "") -> None:
        # timeout 10 s, not 2: the targets are threads of the test's own process, and under
        # load (23 on 2 cores) an in-process gate run beside them kept one from answering
        # the watch within 2 s: "no response within 2 s", a failed measurement, a rollback
        rollback = json.dumps([sys.executable, "-c", ROLLBACK, str(self.marks),
                               "{previous_version}"])  # fmt: skip
        (self.path / "promotion.toml").write_text(
            f"""
[promotion]
environments = ["dev", "staging", "prod"]
{promotion}

[environments.staging]
ca_bundle = "{self.ca_file}"
timeout = 10
rollback = {rollback}
{watch}
{checks}
"""
        )

    def watch(
        self,
        *,
        duration: str = "0.25s",
        interval: str = "0.05s",
        version: str | None = "v2",
        previous: str | None = None,
        execute: bool = True,
        stop_after: int | None = None,
        on_line: Any = None,
        **limits: int,
    ) -> tuple[WatchResult, list[str]]:
        config = load_config(self.path)
        settings = parse_settings(dict(limits), "test", duration=duration, interval=interval)
        lines: list[str] = []
        signal = Stop()

        def progress(line: str) -> None:
            lines.append(line)
            if on_line is not None:
                on_line(len(lines))
            if stop_after is not None and len(lines) >= stop_after:
                signal.stop("SIGTERM received")

        request = WatchRequest(config=config, env="staging", settings=settings,
                               version=version, actor="alice", previous_version=previous,
                               execute=execute, environ={})  # fmt: skip
        return run_watch(request, progress, signal), lines

    def records(self, *kinds: str) -> list[Record]:
        store = open_store("sqlite:///.promotion/ledger.sqlite3", self.path)
        try:
            return store.query(kinds=list(kinds) or None, full=True)
        finally:
            store.close()

    def cli(self, *argv: str) -> tuple[int, str, str]:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest_promotion.cli", *argv, "--rootdir", str(self.path)],
            capture_output=True, text=True, timeout=120, check=False, cwd=self.path,
        )  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def project(tmp_path: Path, servers: Servers) -> Project:  # noqa: F811
    return Project(tmp_path, servers.ca_file)


@dataclass
class OwnPrometheus:
    """A Prometheus of this test's own: ``stop()`` takes it away."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture
def own_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPrometheus]:
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("own-prometheus")
    port = free_port()
    (workdir / "prometheus.yml").write_text(
        f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
    )
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = OwnPrometheus(port, proc)

    def ready() -> bool:
        import requests

        got = requests.get(f"{server.url}/api/v1/query", params={"query": "up"}, timeout=2)
        return bool(got.json()["data"]["result"])

    wait_until("prometheus", ready, proc, log)
    yield server
    server.stop()
