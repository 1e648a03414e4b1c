"""The redis check kind against a real redis-server with a password."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pytest

from pytest_promotion.checks import CheckConfigError, Target, redis_check, resp
from pytest_promotion.checks.base import Outcome

from .conftest import RedisServer, TlsFiles

pytestmark = pytest.mark.integration

OPTIONS = "key 'redis': expected no URL option but db or client_name, found "
WHY = "(TLS verification and timeouts come from ca_bundle, insecure and timeout)"


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
    assert out.message.endswith(": connection refused by " + stopped_redis_url.split("@")[1][:-2])
    assert "redis-Pa55-stopped" not in out.message
    assert out.measured is None


def test_an_unresolvable_host_fails_in_one_line() -> None:
    # The lookup goes through tcp.connect: bounded by the check's deadline like the rest.
    out = redis_check.run({"redis": "redis://no-such-host.invalid:6379/0", "timeout": 2}, target())
    assert not out.passed
    assert out.message.startswith("redis redis://no-such-host.invalid:6379/0: cannot resolve ")


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
    assert out.message == (
        f"redis redis://127.0.0.1:{port}/0: no complete answer from 127.0.0.1:{port} within 0.5 s"
    )
    assert elapsed < 3


def test_a_tls_handshake_that_never_comes_fails_within_the_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"rediss://127.0.0.1:{listener.getsockname()[1]}/0"
        out = run_bounded({"redis": url, "timeout": 0.5}, target(timeout=30))
    assert not out.passed
    assert out.message == f"redis {url}: no complete answer from {url[9:-2]} within 0.5 s"


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
        ({"redis": "rediss://x/0?ssl_cert_reqs=none"}, OPTIONS + "'ssl_cert_reqs' " + WHY),
        ({"redis": "redis://x/0?db=1&socket_timeout=99"}, OPTIONS + "'socket_timeout' " + WHY),
        ({"redis": "redis://x/0?health_check_interval=9"}, "found 'health_check_interval' "),
        ({"redis": "redis://x/0?password=pw1234"}, OPTIONS + "'password' " + WHY),
        ({"redis": "${REDIS}?retry_on_timeout=yes"}, OPTIONS + "'retry_on_timeout' " + WHY),
        ({"redis": "redis://x/zero"}, "key 'redis': expected a database number (/0, /1, ...), "),
        ({"redis": "redis://x:port/0"}, "key 'redis': expected a port number in the URL, found "),
    ],
)
def test_validate_names_place_key_expected_and_found(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        redis_check.validate(spec, "promotion.toml: [[environments.staging.checks]] 'cache'")
    assert str(info.value).startswith("promotion.toml: [[environments.staging.checks]] 'cache': ")
    assert message in str(info.value)
    assert "pw1234" not in str(info.value)


def test_the_url_may_choose_the_database_and_the_client_name(redis_server: RedisServer) -> None:
    url = redis_server.url.removesuffix("/0") + "/0?db=3&client_name=release-gate"
    redis_check.validate({"redis": url}, "w")
    out = redis_check.run({"redis": url}, target(redis_server))
    assert out.passed, out.message
    assert redis_check.run({"redis": redis_server.url[:-1] + "99"}, target(redis_server)) == (
        Outcome(
            False,
            f"redis redis://:***@127.0.0.1:{redis_server.port}/99: SELECT failed "
            "(ERR DB index is out of range)",
        )
    )


def test_the_check_needs_no_client_library(redis_server: RedisServer) -> None:
    """It speaks the protocol itself: no redis-py, no 'pip install' hint, still a pass."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from pytest_promotion.checks import Target, redis_check\n"
        f"out = redis_check.run({{'redis': {redis_server.url!r}}}, Target(env='dev'))\n"
        "print(out.passed)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "True", result.stderr


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


# --- a fake server for what a real redis-server never does ----------------------------------


class FakeRedis:
    """A loopback server speaking just enough RESP: every command gets +OK, and PING and
    INFO get the answer ``replies`` gives them, sent as it says (at once, or trickled)."""

    def __init__(
        self,
        reply: Callable[[bytes], bytes],
        trickle: float = 0.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.reply, self.trickle, self.tls = reply, trickle, tls
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, scheme: str = "redis", query: str = "") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/0{query}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError), conn:
            conn.settimeout(30)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            for name in _commands(conn.makefile("rb")):
                answer = self.reply(name) if name in (b"PING", b"INFO") else b"+OK\r\n"
                if not self.trickle:
                    conn.sendall(answer)
                    continue
                for i in range(len(answer)):
                    if self.stopped.wait(self.trickle):
                        return
                    conn.sendall(answer[i : i + 1])

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(timeout=5)


def _commands(reader: BinaryIO) -> Iterator[bytes]:
    """The name of each command a client sends (``*N`` then N ``$len`` arguments)."""
    while line := reader.readline():
        args = [reader.read(int(reader.readline()[1:]) + 2)[:-2] for _ in range(int(line[1:]))]
        yield args[0].upper()


@contextlib.contextmanager
def fake_redis(
    reply: Callable[[bytes], bytes], trickle: float = 0.0, tls: ssl.SSLContext | None = None
) -> Iterator[FakeRedis]:
    server = FakeRedis(reply, trickle, tls)
    try:
        yield server
    finally:
        server.close()


def pong(name: bytes) -> bytes:
    return b"+PONG\r\n" if name == b"PING" else b"$13\r\nrole:master\r\n\r\n"


def run_bounded(spec: dict[str, object], target: Target) -> Outcome:
    """Run the check; it must return (a hang detector, not a timing test)."""
    start = time.monotonic()
    out = redis_check.run(spec, target)
    assert time.monotonic() - start < 10, out.message
    return out


def test_a_reply_trickled_past_the_timeout_fails_at_the_deadline() -> None:
    """'$4\\r\\nPONG\\r\\n' one byte every 0.4 s: each read is quick, the whole is 4 s."""
    with fake_redis(lambda name: b"$4\r\nPONG\r\n", trickle=0.4) as server:
        out = run_bounded({"redis": server.url(), "timeout": 1}, target(timeout=30))
    assert not out.passed
    assert out.message == (
        f"redis {server.url()}: no complete answer from 127.0.0.1:{server.port} within 1 s"
    )


def test_a_reply_over_the_cap_is_not_read() -> None:
    """An INFO that would pass (role:master) but is 4 MiB long: refused by its length."""
    size = 4 << 20
    body = b"role:master\r\n" + b"x" * (size - 13)
    with fake_redis(
        lambda n: pong(n) if n == b"PING" else b"$%d\r\n%s\r\n" % (size, body)
    ) as server:
        out = run_bounded({"redis": server.url(), "expect_role": "master"}, target())
    assert not out.passed
    assert out.message == (
        f"redis {server.url()}: the reply to INFO is over the 1 MiB cap ({size} bytes announced)"
    )
    assert resp.REPLY_CAP == 1 << 20


def test_a_reply_line_without_end_is_cut_at_the_cap() -> None:
    with fake_redis(lambda name: b"+" + b"P" * (4 << 20)) as server:
        out = run_bounded({"redis": server.url()}, target())
    assert not out.passed
    assert (
        out.message
        == f"redis {server.url()}: the reply to PING is over the 1 MiB cap (no end of line)"
    )


def test_something_that_is_not_redis_fails_closed() -> None:
    with fake_redis(lambda name: b"HTTP/1.1 400 Bad Request\r\n\r\n") as server:
        out = run_bounded({"redis": server.url()}, target())
    assert not out.passed
    assert out.message == (
        f"redis {server.url()}: PING answered with something that is not a Redis reply "
        "(b'HTTP/1.1 400 Bad Request')"
    )


def test_negative_memory_figures_are_no_data() -> None:
    info = b"used_memory:-5\r\nmaxmemory:100\r\n"

    def reply(name: bytes) -> bytes:
        return b"+PONG\r\n" if name == b"PING" else b"$%d\r\n%s\r\n" % (len(info), info)

    with fake_redis(reply) as server:
        out = run_bounded({"redis": server.url(), "max_memory_used_ratio": 0.9}, target())
    assert not out.passed
    assert out.rollback is False
    assert out.message == (
        f"redis {server.url()}: INFO memory says used_memory=-5, maxmemory=100; "
        "expected counts of bytes"
    )


@pytest.fixture
def tls_server(tls_files: TlsFiles) -> Iterator[FakeRedis]:
    """TLS with a certificate from the private CA (unknown to the system store)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    with fake_redis(pong, tls=context) as server:
        yield server


def test_url_options_cannot_turn_tls_verification_off(tls_server: FakeRedis) -> None:
    """The URL of a ${VAR} or {placeholder} is only known at run: checked there too."""
    url = tls_server.url("rediss", "?ssl_cert_reqs=none")
    out = run_bounded({"redis": url}, target())
    assert not out.passed
    assert out.message == f"redis {url}: {OPTIONS}'ssl_cert_reqs' {WHY}"
    verified = run_bounded({"redis": tls_server.url("rediss")}, target())
    assert not verified.passed
    assert "TLS verification failed (" in verified.message


def test_url_options_cannot_unbound_the_check() -> None:
    with fake_redis(lambda name: b"$4\r\nPONG\r\n", trickle=0.4) as server:
        url = server.url(query="?socket_timeout=60&socket_connect_timeout=60")
        out = run_bounded({"redis": url, "timeout": 1}, target(timeout=30))
    assert not out.passed
    assert out.message == f"redis {url}: {OPTIONS}'socket_timeout' {WHY}"


def test_insecure_skips_verification_and_says_so(tls_server: FakeRedis) -> None:
    insecure = Target(env="dev", insecure=True, timeout=5)
    out = run_bounded({"redis": tls_server.url("rediss"), "expect_role": "master"}, insecure)
    assert out.passed, out.message
    assert out.message.startswith(f"redis {tls_server.url('rediss')}: PONG in ")
    assert out.message.endswith(", role master; TLS verification disabled (insecure = true)")
