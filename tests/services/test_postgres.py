"""The postgres check kind against a real PostgreSQL 15 primary and streaming standby."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from pytest_promotion.checks import CheckConfigError, Target, postgres

from .conftest import PostgresServer

pytestmark = pytest.mark.integration


def target(server: PostgresServer | None = None) -> Target:
    return Target(env="staging", timeout=5, secrets=(server.password,) if server else ())


def test_select_1_on_the_primary(postgres_server: PostgresServer) -> None:
    out = postgres.run({"postgres": postgres_server.url()}, target(postgres_server))
    assert out.passed, out.message
    prefix = f"postgres 127.0.0.1:{postgres_server.port}/postgres: SELECT 1 in "
    assert out.message.startswith(prefix)
    assert out.message.endswith(" ms, primary, read-write")
    assert isinstance(out.measured, float) and out.unit == "ms" and out.threshold == "SELECT 1"


def test_key_value_dsn(postgres_server: PostgresServer) -> None:
    out = postgres.run({"postgres": postgres_server.keyvalue()}, target())
    assert out.passed, out.message
    assert postgres_server.password not in out.message


def test_wrong_password_fails_without_leaking_it(postgres_server: PostgresServer) -> None:
    for dsn in (
        postgres_server.url(password="wrong-Pa55-word"),
        postgres_server.keyvalue().replace(postgres_server.password, "wrong-Pa55-word"),
    ):
        out = postgres.run({"postgres": dsn}, target())
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
    """A port that accepts TCP but never answers the startup packet."""
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
    assert out.message.startswith(f"postgres 127.0.0.1:{port}/app: cannot connect (")
    assert "pw-Pa55" not in out.message
    assert elapsed < 4
