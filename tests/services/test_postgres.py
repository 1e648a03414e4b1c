"""The postgres check kind against a real PostgreSQL 15 primary and streaming standby."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_promotion.checks import CheckConfigError, Outcome, Target, postgres

from .conftest import PostgresServer

pytestmark = pytest.mark.integration

# A check must return: far above every bound it has (timeout + libpq's 2 s connect floor).
HANG_S = 10


def target(server: PostgresServer | None = None, **settings: Any) -> Target:
    """The environment of the test servers: their CA as ca_bundle, their password secret."""
    fields: dict[str, Any] = {
        "env": "staging",
        "timeout": 5,
        "secrets": (server.password,) if server else (),
        "ca_bundle": str(server.ca) if server and server.ca else None,
    }
    return Target(**{**fields, **settings})


def test_select_1_on_the_primary(postgres_server: PostgresServer) -> None:
    out = postgres.run({"postgres": postgres_server.url()}, target(postgres_server))
    assert out.passed, out.message
    prefix = f"postgres 127.0.0.1:{postgres_server.port}/postgres: SELECT 1 in "
    assert out.message.startswith(prefix)
    assert out.message.endswith(" ms, primary, read-write")
    assert isinstance(out.measured, float) and out.unit == "ms" and out.threshold == "SELECT 1"


def test_key_value_dsn(postgres_server: PostgresServer) -> None:
    out = postgres.run(
        {"postgres": postgres_server.keyvalue()}, target(postgres_server, secrets=())
    )
    assert out.passed, out.message
    assert postgres_server.password not in out.message


def test_wrong_password_fails_without_leaking_it(postgres_server: PostgresServer) -> None:
    for dsn in (
        postgres_server.url(password="wrong-Pa55-word"),
        postgres_server.keyvalue().replace(postgres_server.password, "wrong-Pa55-word"),
    ):
        out = postgres.run({"postgres": dsn}, target(postgres_server, secrets=()))
        assert not out.passed
        assert out.message.startswith(
            f"postgres 127.0.0.1:{postgres_server.port}/postgres: cannot connect ("
        )
        assert 'password authentication failed for user "postgres"' in out.message
        assert "wrong-Pa55-word" not in out.message


def test_nothing_listening_fails(postgres_server: PostgresServer) -> None:
    from tests.support import free_port

    port = free_port()
    out = postgres.run(
        {"postgres": f"postgresql://postgres:{postgres_server.password}@127.0.0.1:{port}/app"},
        target(postgres_server),
    )
    assert not out.passed
    assert out.message.startswith(f"postgres 127.0.0.1:{port}/app: cannot connect (")
    assert "Connection refused" in out.message
    assert postgres_server.password not in out.message


def test_expect_read_write(postgres_server: PostgresServer) -> None:
    rw = postgres.run(
        {"postgres": postgres_server.url(), "expect_read_write": True}, target(postgres_server)
    )
    assert rw.passed, rw.message
    ro = postgres.run(
        {"postgres": postgres_server.url(), "expect_read_write": False}, target(postgres_server)
    )
    assert not ro.passed
    assert ro.message == (
        f"postgres 127.0.0.1:{postgres_server.port}/postgres: transaction_read_only is off on "
        "this primary, expected read-only"
    )
    assert (ro.measured, ro.threshold) == ("off", "transaction_read_only == on")


def test_read_only_session_on_a_primary(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.url(options="-c%20default_transaction_read_only%3Don")
    ro = postgres.run({"postgres": dsn, "expect_read_write": False}, target(postgres_server))
    assert ro.passed, ro.message
    assert ro.message.endswith(", primary, read-only")


def test_replication_lag_on_a_primary_is_zero(postgres_server: PostgresServer) -> None:
    out = postgres.run(
        {"postgres": postgres_server.url(), "max_replication_lag_s": 5}, target(postgres_server)
    )
    assert out.passed, out.message
    assert out.message.endswith(", replication lag 0 s (primary, not a standby)")
    assert (out.measured, out.threshold, out.unit) == (0.0, "<= 5", "s")


def test_standby_is_read_only_and_caught_up(postgres_standby: PostgresServer) -> None:
    spec = {
        "postgres": postgres_standby.url(),
        "expect_read_write": False,
        "max_replication_lag_s": 5,
    }
    out = postgres.run(spec, target(postgres_standby))
    assert out.passed, out.message
    assert ", standby, read-only, replication lag " in out.message
    assert isinstance(out.measured, float) and 0 <= out.measured <= 5
    rw = postgres.run(
        {"postgres": postgres_standby.url(), "expect_read_write": True}, target(postgres_standby)
    )
    assert not rw.passed
    assert rw.message.endswith("transaction_read_only is on on this standby, expected read-write")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"postgres": "mysql://u:pw1234@h/db"},
            "key 'postgres': expected a postgresql:// URL or key=value DSN, found 'mysql://u:***@h/db'",
        ),
        (
            {"postgres": "db.example.com"},
            "key 'postgres': expected a postgresql:// URL or key=value DSN, found 'db.example.com'",
        ),
        (
            {"postgres": "host=x", "max_replication_lag_s": -1},
            "key 'max_replication_lag_s': expected a number >= 0, found -1",
        ),
    ],
)
def test_validate_names_place_key_expected_and_found(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        postgres.validate(spec, "promotion.toml: [[environments.prod.checks]] 'db'")
    assert str(info.value) == f"promotion.toml: [[environments.prod.checks]] 'db': {message}"


def test_without_psycopg_the_message_names_the_pip_command() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from pytest_promotion.checks import Target, postgres\n"
        "out = postgres.run({'postgres': 'host=x'}, Target(env='dev'))\n"
        "print(out.passed, out.message)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == (
        "False psycopg is not installed: pip install 'pytest-promotion[postgres]'"
    )


def test_silent_server_is_bounded_by_connect_timeout() -> None:
    """A port that accepts TCP but never answers the startup packet: libpq's floor of 2 s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        start = time.monotonic()
        out = postgres.run(
            {"postgres": f"host=127.0.0.1 port={port} dbname=app user=u password=pw-Pa55",
             "timeout": 1}, Target(env="dev", timeout=30)
        )  # fmt: skip
        elapsed = time.monotonic() - start
    assert not out.passed
    assert out.message == (
        f"postgres 127.0.0.1:{port}/app: cannot connect (no answer from 127.0.0.1:{port} within 2 s)"
    )
    assert elapsed < 4


def test_an_unresolvable_host_fails_in_one_line() -> None:
    # The DSN's host names are resolved before any attempt: bounded by the check's deadline.
    out = postgres.run(
        {"postgres": "postgresql://u:pw-Pa55@no-such-host.invalid:5432/app", "timeout": 2},
        Target(env="dev"),
    )
    assert not out.passed
    assert out.message.startswith(
        "postgres no-such-host.invalid:5432/app: cannot connect (failed to resolve host "
        "'no-such-host.invalid'"
    )
    assert "pw-Pa55" not in out.message


def test_a_host_name_idna_cannot_encode_fails_in_one_line() -> None:
    out = postgres.run(
        {"postgres": "postgresql://u:pw-Pa55@bad..host:5432/app", "timeout": 2}, Target(env="dev")
    )
    assert not out.passed
    assert out.message == (
        "postgres bad..host:5432/app: cannot connect (encoding with 'idna' codec failed "
        "(UnicodeError: label empty or too long))"
    )


def test_several_silent_hosts_share_one_deadline() -> None:
    """Each host used to get its own connect_timeout: 3 silent hosts took 3 x 2 s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        dsn = f"host=127.0.0.1,127.0.0.1,127.0.0.1 port={port} dbname=app user=u sslmode=disable"
        start = time.monotonic()
        out = postgres.run({"postgres": dsn}, Target(env="dev", timeout=1))
        elapsed = time.monotonic() - start
    assert not out.passed
    assert out.message == (
        f"postgres 127.0.0.1,127.0.0.1,127.0.0.1:{port}/app: cannot connect (no answer from "
        f"127.0.0.1:{port} within 2 s; 2 more host(s) not tried within 1 s)"
    )
    assert elapsed < 4


# --- A server that completes the startup, then never answers a query ------------------------


def _message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def _startup_then_silence(conn: socket.socket) -> None:
    """Trust authentication, the parameters psycopg reads, ReadyForQuery; then nothing."""

    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    with conn:
        try:
            while True:
                body = exact(struct.unpack("!i", exact(4))[0] - 4)
                if struct.unpack("!i", body[:4])[0] in (80877103, 80877104):  # SSL/GSS request
                    conn.sendall(b"N")
                    continue
                break
            out = _message(b"R", struct.pack("!i", 0))
            for key, value in ((b"server_version", b"15.0"), (b"client_encoding", b"UTF8"),
                               (b"standard_conforming_strings", b"on")):  # fmt: skip
                out += _message(b"S", key + b"\0" + value + b"\0")
            conn.sendall(out + _message(b"K", struct.pack("!ii", 1, 2)) + _message(b"Z", b"I"))
            while conn.recv(65536):  # read the queries, answer none
                pass
        except (EOFError, OSError):
            pass


@pytest.fixture
def mute_postgres() -> Iterator[int]:
    """The port of a fake PostgreSQL that accepts a session and never answers a query."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def accept() -> None:
        with listener:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=_startup_then_silence, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def bounded_run(spec: dict[str, Any], env: Target) -> Outcome:
    """postgres.run in a thread: a check that hangs fails the test instead of the suite."""
    box: dict[str, Outcome] = {}
    worker = threading.Thread(target=lambda: box.update(out=postgres.run(spec, env)), daemon=True)
    worker.start()
    worker.join(HANG_S)
    assert not worker.is_alive(), f"the check still runs after {HANG_S} s"
    return box["out"]


def test_server_that_never_answers_a_query_is_bounded_by_the_timeout(mute_postgres: int) -> None:
    """statement_timeout is the server's: a server that does not answer needs a client bound."""
    port = mute_postgres
    spec = {"postgres": f"postgresql://gate:pg-Pa55-mute@127.0.0.1:{port}/app?sslmode=disable"}
    out = bounded_run(spec, Target(env="dev", timeout=1))
    assert not out.passed
    assert (
        out.message == f"postgres 127.0.0.1:{port}/app: no answer from 127.0.0.1:{port} within 1 s"
    )
    assert "pg-Pa55-mute" not in out.message


# --- TLS: verified unless sslmode=disable or insecure = true --------------------------------


def test_the_server_certificate_is_verified_against_ca_bundle(
    postgres_server: PostgresServer,
) -> None:
    out = postgres.run({"postgres": postgres_server.url()}, target(postgres_server))
    assert out.passed, out.message
    assert out.details["tls"] == "verify-full"
    assert "TLS" not in out.message and "warnings" not in out.details


def test_a_certificate_from_another_ca_fails(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    out = postgres.run(
        {"postgres": postgres_server.url()}, target(postgres_server, ca_bundle=str(other))
    )
    assert not out.passed
    assert out.message.startswith(
        f"postgres 127.0.0.1:{postgres_server.port}/postgres: TLS verification failed "
        f"against ca_bundle {other} ("
    )
    assert "certificate verify failed" in out.message
    assert "\n" not in out.message and postgres_server.password not in out.message


def test_without_ca_bundle_the_system_store_does_not_trust_a_private_ca(
    postgres_server: PostgresServer,
) -> None:
    system = postgres.system_ca_file()
    assert system is not None
    out = postgres.run({"postgres": postgres_server.url()}, target(postgres_server, ca_bundle=None))
    assert not out.passed
    assert out.message.startswith(
        f"postgres 127.0.0.1:{postgres_server.port}/postgres: TLS verification failed "
        f"against the system trust store ({system}) ("
    )


def test_a_missing_ca_bundle_is_named(postgres_server: PostgresServer, tmp_path: Path) -> None:
    out = postgres.run(
        {"postgres": postgres_server.url()},
        target(postgres_server, ca_bundle=str(tmp_path / "nope.pem")),
    )
    assert not out.passed
    assert out.message == (
        f"postgres 127.0.0.1:{postgres_server.port}/postgres: ca_bundle "
        f"{tmp_path / 'nope.pem'} does not exist"
    )


def test_insecure_encrypts_without_verifying_and_says_so(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    out = postgres.run(
        {"postgres": postgres_server.url()},
        target(postgres_server, ca_bundle=str(other), insecure=True),
    )
    assert out.passed, out.message
    assert out.message.endswith(
        ", primary, read-write; TLS verification disabled (insecure = true)"
    )
    assert out.details["tls"] == "require"
    assert out.details["warnings"] == ["TLS verification disabled (insecure = true)"]


@pytest.mark.parametrize("mode", ["allow", "prefer", "require", "verify-ca"])
def test_an_unverified_sslmode_is_refused_unless_insecure(
    postgres_server: PostgresServer, mode: str
) -> None:
    dsn = postgres_server.url(sslmode=mode)
    refused = postgres.run({"postgres": dsn}, target(postgres_server))
    assert not refused.passed
    assert refused.message == (
        f"postgres 127.0.0.1:{postgres_server.port}/postgres: sslmode={mode} in the DSN does "
        "not verify the server's certificate: use sslmode=verify-full (the default) or "
        "sslmode=disable, or set insecure = true on the environment"
    )
    allowed = postgres.run({"postgres": dsn}, target(postgres_server, insecure=True))
    assert allowed.passed, allowed.message
    note = (
        "host name not verified (sslmode=verify-ca, insecure = true)"
        if mode == "verify-ca"
        else "TLS verification disabled (insecure = true)"
    )
    assert allowed.message.endswith(f", primary, read-write; {note}")
    assert allowed.details["tls"] == mode and allowed.details["warnings"] == [note]


def test_sslmode_disable_connects_without_tls_and_says_so(
    postgres_server: PostgresServer,
) -> None:
    out = postgres.run(
        {"postgres": postgres_server.url(sslmode="disable")},
        target(postgres_server, ca_bundle=None),
    )
    assert out.passed, out.message
    assert out.message.endswith(", primary, read-write; without TLS (sslmode=disable)")
    assert out.details["tls"] == "disable"


def test_a_server_without_tls_is_refused_by_default(mute_postgres: int) -> None:
    """The fake answers the SSLRequest with 'N', as a server with ssl = off does."""
    out = bounded_run(
        {"postgres": f"postgresql://gate@127.0.0.1:{mute_postgres}/app"},
        Target(env="dev", timeout=2),
    )
    assert not out.passed
    assert out.message == (
        f"postgres 127.0.0.1:{mute_postgres}/app: the server does not offer TLS and "
        "sslmode=verify-full requires it; add sslmode=disable to the DSN to connect without TLS"
    )
