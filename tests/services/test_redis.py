"""The redis check kind against a real redis-server with a password."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from pytest_promotion.checks import CheckConfigError, Target, redis_check

from .conftest import RedisServer, TlsFiles

pytestmark = pytest.mark.integration


def target(server: RedisServer | None = None, timeout: float = 5.0) -> Target:
    return Target(env="staging", timeout=timeout, secrets=(server.password,) if server else ())


def test_ping_answers_pong_and_measures_latency(redis_server: RedisServer) -> None:
    out = redis_check.run({"redis": redis_server.url}, target(redis_server))
    assert out.passed, out.message
    assert out.message.startswith(f"redis redis://:***@127.0.0.1:{redis_server.port}/0: PONG in ")
    assert isinstance(out.measured, float) and 0 <= out.measured < 1000
    assert (out.threshold, out.unit) == ("PONG", "ms")
    assert redis_server.password not in out.message


def test_wrong_password_fails_without_leaking_it(redis_server: RedisServer) -> None:
    url = f"redis://:not-the-Pa55word@127.0.0.1:{redis_server.port}/0"
    out = redis_check.run({"redis": url}, target())  # the secret is not even registered
    assert not out.passed
    assert out.message == (
        f"redis redis://:***@127.0.0.1:{redis_server.port}/0: authentication failed "
        "(invalid username-password pair or user is disabled.); check the password"
    )
    assert "not-the-Pa55word" not in out.message


def test_missing_password_fails(redis_server: RedisServer) -> None:
    out = redis_check.run({"redis": f"redis://127.0.0.1:{redis_server.port}/0"}, target())
    assert not out.passed
    assert "authentication failed (Authentication required.)" in out.message


def test_stopped_server_fails_with_connection_refused(stopped_redis_url: str) -> None:
    out = redis_check.run({"redis": stopped_redis_url}, target())
    assert not out.passed
    assert ": cannot connect (" in out.message and "Connection refused" in out.message
    assert "redis-Pa55-stopped" not in out.message
    assert out.measured is None


def test_silent_server_fails_within_the_timeout() -> None:
    """A port that accepts connections but never answers: bounded by the check's timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        start = time.monotonic()
        out = redis_check.run(
            {"redis": f"redis://127.0.0.1:{port}/0", "timeout": 0.5}, target(timeout=30)
        )
        elapsed = time.monotonic() - start
    assert not out.passed
    assert "no answer within 0.5 s" in out.message
    assert elapsed < 3


def test_expect_role_master(redis_server: RedisServer) -> None:
    ok = redis_check.run({"redis": redis_server.url, "expect_role": "master"}, target(redis_server))
    assert ok.passed, ok.message
    assert ok.message.endswith(", role master")
    bad = redis_check.run(
        {"redis": redis_server.url, "expect_role": "replica"}, target(redis_server)
    )
    assert not bad.passed
    assert bad.message == (
        f"redis redis://:***@127.0.0.1:{redis_server.port}/0: role is master, expected replica"
    )
    assert (bad.measured, bad.threshold) == ("master", "role == replica")


@pytest.fixture
def maxmemory(redis_server: RedisServer) -> Iterator[None]:
    client = redis_server.client()
    client.config_set("maxmemory", "1gb")
    yield
    client.config_set("maxmemory", "0")


@pytest.mark.usefixtures("maxmemory")
def test_memory_ratio_within_and_above_the_limit(redis_server: RedisServer) -> None:
    spec = {"redis": redis_server.url, "max_memory_used_ratio": 0.9}
    ok = redis_check.run(spec, target(redis_server))
    assert ok.passed, ok.message
    assert isinstance(ok.measured, float) and 0 < ok.measured < 0.1
    assert ok.threshold == "<= 0.9"
    used = redis_server.client().info("memory")["used_memory"]
    tight = redis_check.run({**spec, "max_memory_used_ratio": 0.000001}, target(redis_server))
    assert not tight.passed
    assert "of maxmemory" in tight.message and "above 0.0%" in tight.message
    assert tight.details["maxmemory"] == 1024**3
    assert abs(tight.details["used_memory"] - used) < 1024 * 1024


def test_memory_ratio_without_maxmemory_fails_closed(redis_server: RedisServer) -> None:
    out = redis_check.run(
        {"redis": redis_server.url, "max_memory_used_ratio": 0.9}, target(redis_server)
    )
    assert not out.passed
    assert out.message == (
        f"redis redis://:***@127.0.0.1:{redis_server.port}/0: maxmemory is 0 (no limit), so "
        "used_memory/maxmemory cannot be measured; set maxmemory on the server or drop "
        "max_memory_used_ratio"
    )
    assert (out.measured, out.threshold, out.rollback) == (None, "<= 0.9", False)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"redis": "http://x"},
            "key 'redis': expected a redis:// or rediss:// URL, found 'http://x'",
        ),
        ({"redis": "tcp://:pw1234@x"}, "found 'tcp://:***@x'"),
        (
            {"redis": "redis://x", "expect_role": "leader"},
            'key \'expect_role\': expected "master", "replica" or "slave", found \'leader\'',
        ),
        (
            {"redis": "redis://x", "max_memory_used_ratio": 1.5},
            "key 'max_memory_used_ratio': expected a number in (0, 1], found 1.5",
        ),
    ],
)
def test_validate_names_place_key_expected_and_found(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        redis_check.validate(spec, "promotion.toml: [[environments.staging.checks]] 'cache'")
    assert str(info.value).startswith("promotion.toml: [[environments.staging.checks]] 'cache': ")
    assert message in str(info.value)


def test_without_redis_py_the_message_names_the_pip_command() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from pytest_promotion.checks import Target, redis_check\n"
        "out = redis_check.run({'redis': 'redis://x:1/0'}, Target(env='dev'))\n"
        "print(out.passed, out.message)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == (
        "False redis-py is not installed: pip install 'pytest-promotion[redis]'"
    )


def test_rediss_verified_with_the_environment_ca_bundle(
    rediss_server: RedisServer, tls_files: TlsFiles
) -> None:
    target = Target(env="prod", ca_bundle=str(tls_files.ca), secrets=(rediss_server.password,))
    out = redis_check.run({"redis": rediss_server.url, "expect_role": "master"}, target)
    assert out.passed, out.message
    assert out.message.startswith(f"redis rediss://:***@127.0.0.1:{rediss_server.port}/0: PONG")


def test_rediss_with_an_unknown_ca_fails(rediss_server: RedisServer) -> None:
    out = redis_check.run({"redis": rediss_server.url}, target(rediss_server))
    assert not out.passed
    assert out.message.startswith(
        f"redis rediss://:***@127.0.0.1:{rediss_server.port}/0: TLS verification failed ("
    )
    assert "certificate verify failed" in out.message
    assert out.message.endswith(
        "is the environment's ca_bundle the CA that signed the server's certificate?"
    )
    assert rediss_server.password not in out.message


def test_plain_redis_against_a_tls_port_fails(rediss_server: RedisServer) -> None:
    url = rediss_server.url.replace("rediss://", "redis://")
    out = redis_check.run({"redis": url, "timeout": 1}, target(rediss_server))
    assert not out.passed
    assert rediss_server.password not in out.message
