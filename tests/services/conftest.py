"""Real servers on loopback free ports for the service check kinds.

Every fixture starts its own private instance (never the shared ones on 5432/6379),
waits for readiness by polling, and stops the process at teardown.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from tests.support import IN_CI, free_port, require_binary

if TYPE_CHECKING:
    import redis

PG_BIN = Path("/usr/lib/postgresql/15/bin")
STARTUP_S = 30.0


def wait_until(
    what: str,
    probe: Callable[[], bool],
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    timeout: float = STARTUP_S,
) -> None:
    """Poll ``probe`` until it is true; fail with the server's log if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"{what} did not become ready within {timeout:g} s\n{tail}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- Redis -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    port: int
    password: str
    tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        import redis

        tls = {"ssl_ca_certs": str(self.tls.ca)} if self.tls else {}
        return redis.Redis.from_url(self.url, socket_timeout=5, **tls)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A private CA (trustme) and a server certificate for 127.0.0.1 and localhost."""
    import trustme

    workdir = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    cert.private_key_pem.write_to_path(str(files.key))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(files.cert), append=True)
    return files


@contextlib.contextmanager
def _redis(workdir: Path, tls: TlsFiles | None = None) -> Iterator[RedisServer]:
    binary = require_binary("redis-server")
    port, password = free_port(), "redis-Pa55-" + os.urandom(6).hex()
    log = workdir / "redis.log"
    listen = ["--port", str(port)]
    if tls is not None:
        listen = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(tls.cert),
                  "--tls-key-file", str(tls.key), "--tls-ca-cert-file", str(tls.ca),
                  "--tls-auth-clients", "no"]  # fmt: skip
    proc = subprocess.Popen(
        [binary, *listen, "--bind", "127.0.0.1", "--requirepass", password, "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = RedisServer(port, password, tls)
    try:
        wait_until("redis-server", lambda: bool(server.client().ping()), proc, log)
        yield server
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server with a password, no persistence, its own directory."""
    with _redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def rediss_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[RedisServer]:
    """The same, speaking TLS only, with a certificate from the private CA."""
    with _redis(tmp_path_factory.mktemp("rediss"), tls_files) as server:
        yield server


@pytest.fixture
def stopped_redis_url() -> str:
    """A Redis URL whose port nothing listens on: a server that is down."""
    return f"redis://:redis-Pa55-stopped@127.0.0.1:{free_port()}/0"


# --- PostgreSQL ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    port: int
    password: str
    datadir: Path
    ca: Path | None = None  # the CA that signed the server's certificate (ssl = on)

    def url(self, password: str | None = None, **params: str) -> str:
        pw = self.password if password is None else password
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://postgres:{pw}@127.0.0.1:{self.port}/postgres" + (
            f"?{query}" if query else ""
        )

    def keyvalue(self) -> str:
        return (
            f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres "
            f"password={self.password}"
        )


class _PgCluster:
    """One temporary directory owned by the postgres user, holding one or more clusters."""

    def __init__(self) -> None:
        # the packaged server's directory first: pg_basebackup etc. are not all on PATH
        initdb = Path(PG_BIN, "initdb")
        self.bin = PG_BIN if initdb.exists() else Path(require_binary("initdb")).parent
        self.root = Path(tempfile.mkdtemp(prefix="pgprom-"))
        self.as_pg: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses to run as root; the data directory must belong to postgres.
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                (pytest.fail if IN_CI else pytest.skip)("no postgres user to run the server as")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_pg = [require_binary("runuser"), "-u", "postgres", "--"]
        self.started: list[Path] = []

    def run(self, *argv: str, env: dict[str, str] | None = None) -> None:
        result = subprocess.run(
            [*self.as_pg, *argv], capture_output=True, text=True, timeout=120, env=env, check=False
        )
        if result.returncode != 0:
            pytest.fail(
                f"{argv[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        if self.as_pg:
            user = pwd.getpwnam("postgres")
            os.chown(path, user.pw_uid, user.pw_gid)
        return path

    def server_tls(self, tls: TlsFiles) -> str:
        """pg_ctl -o options for ssl = on with the test certificate: copies of the files,
        owned by the server's user, the key 0600 (PostgreSQL refuses a readable key)."""
        cert, key = self.root / "server.crt", self.root / "server.key"
        shutil.copyfile(tls.cert, cert)
        shutil.copyfile(tls.key, key)
        key.chmod(0o600)
        if self.as_pg:
            user = pwd.getpwnam("postgres")
            for path in (cert, key):
                os.chown(path, user.pw_uid, user.pw_gid)
        return f" -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    def start(self, datadir: Path, port: int, extra: str = "") -> None:
        self.run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            f"{datadir}.log",
            "-w",
            "-t",
            str(int(STARTUP_S)),
            "-o",
            f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off{extra}",
            "start",
        )
        self.started.append(datadir)

    def close(self) -> None:
        for datadir in reversed(self.started):
            subprocess.run(
                [
                    *self.as_pg,
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _pg_ready(server: PostgresServer) -> bool:
    import psycopg

    with psycopg.connect(server.url(), connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[_PgCluster]:
    cluster = _PgCluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def postgres_server(pg_cluster: _PgCluster, tls_files: TlsFiles) -> PostgresServer:
    """A private primary with scram password authentication, on a free loopback port,
    ssl = on with a certificate from the private CA (plaintext still accepted)."""
    password = "pg-Pa55-" + os.urandom(6).hex()
    pwfile = pg_cluster.write("pwfile", password + "\n")
    datadir = pg_cluster.root / "primary"
    pg_cluster.run(
        str(pg_cluster.bin / "initdb"),
        "-D",
        str(datadir),
        "-U",
        "postgres",
        "--auth=scram-sha-256",
        f"--pwfile={pwfile}",
        "-E",
        "UTF8",
        "--no-sync",
        "--no-instructions",
    )
    pwfile.unlink()
    port = free_port()
    pg_cluster.start(datadir, port, pg_cluster.server_tls(tls_files))
    server = PostgresServer(port, password, datadir, tls_files.ca)
    wait_until("postgres", lambda: _pg_ready(server), log=Path(f"{datadir}.log"))
    return server


@pytest.fixture(scope="session")
def postgres_standby(
    pg_cluster: _PgCluster, postgres_server: PostgresServer, tls_files: TlsFiles
) -> PostgresServer:
    """A streaming standby of ``postgres_server`` (pg_basebackup -R), on its own port,
    ssl = on like the primary."""
    datadir = pg_cluster.root / "standby"
    env = {**os.environ, "PGPASSWORD": postgres_server.password}
    pg_cluster.run(
        str(pg_cluster.bin / "pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        str(postgres_server.port),
        "-U",
        "postgres",
        "-D",
        str(datadir),
        "-R",
        "-X",
        "stream",
        "--no-sync",
        env=env,
    )
    port = free_port()
    pg_cluster.start(datadir, port, pg_cluster.server_tls(tls_files))
    server = PostgresServer(port, postgres_server.password, datadir, tls_files.ca)

    def streaming() -> bool:
        import psycopg

        with psycopg.connect(server.url(), connect_timeout=2) as conn:
            row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
            return row == ("streaming",)

    wait_until("postgres standby", streaming, log=Path(f"{datadir}.log"))
    return server


# --- Small loopback HTTP servers -------------------------------------------------------------


class _Routes(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {}

    def do_GET(self) -> None:
        status, ctype, body = self.routes.get(self.path, (404, "text/plain", b"not found\n"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(routes: dict[str, tuple[int, str, bytes]], tls: TlsFiles | None = None) -> Iterator[int]:
    """A threaded HTTP(S) server on a loopback free port answering fixed routes."""
    handler = type("Handler", (_Routes,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert, tls.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


METRICS = b"""\
# TYPE promotion_test_availability gauge
promotion_test_availability 0.995
# TYPE promotion_test_errors_total counter
promotion_test_errors_total{code="500"} 3
promotion_test_errors_total{code="502"} 1
"""


@pytest.fixture(scope="session")
def metrics_port() -> Iterator[int]:
    """The application Prometheus scrapes: /metrics in the text exposition format."""
    with serve({"/metrics": (200, "text/plain; version=0.0.4", METRICS)}) as port:
        yield port


# --- Prometheus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusServer:
    port: int
    closed_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


RULES = """\
groups:
  - name: promotion-test
    interval: 1s
    rules:
      - record: promotion_test:availability:max
        expr: max(promotion_test_availability)
      - alert: AlwaysFiring
        expr: vector(1)
        for: 0s
        labels: {severity: critical}
      - alert: Watchdog
        expr: vector(1)
        for: 0s
      - alert: SlowToFire
        expr: vector(1)
        for: 1h
"""


@pytest.fixture(scope="session")
def prometheus_server(
    tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping the test app, itself and a closed port every second."""
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    port, closed = free_port(), free_port()
    (workdir / "rules.yml").write_text(RULES)
    (workdir / "prometheus.yml").write_text(
        f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}}
rule_files: [{workdir / "rules.yml"}]
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ["127.0.0.1:{metrics_port}"]}}]
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: gone
    static_configs: [{{targets: ["127.0.0.1:{closed}"]}}]
"""
    )
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(port, closed)

    def api(path: str) -> Any:
        import requests

        return requests.get(server.url + path, timeout=2).json()["data"]

    def ready() -> bool:
        # every job scraped at least once, and the alerting rules evaluated
        ups = api("/api/v1/query?query=up")["result"]
        jobs = {s["metric"]["job"]: s["value"][1] for s in ups}
        alerts = {a["labels"]["alertname"]: a["state"] for a in api("/api/v1/alerts")["alerts"]}
        return (
            jobs == {"app": "1", "prometheus": "1", "gone": "0"}
            and alerts.get("AlwaysFiring") == "firing"
            and alerts.get("Watchdog") == "firing"
            and bool(api("/api/v1/query?query=promotion_test:availability:max")["result"])
        )

    try:
        wait_until("prometheus", ready, proc, log, timeout=60)
        yield server
    finally:
        stop(proc)
