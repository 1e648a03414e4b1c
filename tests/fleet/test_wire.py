"""The fleet engine's own HTTP/1.1 exchange (checks/aio_wire.py) against real loopback
servers that answer with exact bytes: the framings a server may choose (chunked, until
close, gzip, an interim 100), answers that are not HTTP or stop half-way, and the request
it sends. Each case runs on uvloop's loop and on asyncio's."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_promotion.checks import http
from pytest_promotion.checks.base import Target

pytestmark = pytest.mark.integration

OK = b'{"status": "ok"}'


class Canned:
    """A listener on 127.0.0.1 that reads each request's head and answers ``reply`` (bytes,
    sent as they are; a float between them is a pause), then closes."""

    def __init__(self, *reply: bytes | float) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)  # accept() wakes up to see the stop
        self.port: int = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        break
                    head += data
                self.requests.append(head)
                for part in self.reply:
                    if isinstance(part, float):
                        if self.stop.wait(part):
                            return
                    else:
                        try:
                            conn.sendall(part)
                        except OSError:
                            break

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def canned(loop_kind: str) -> Iterator[Any]:
    made: list[Canned] = []

    def make(*reply: bytes | float) -> Canned:
        made.append(Canned(*reply))
        return made[-1]

    yield make
    for server in made:
        server.close()


def probe(server: Canned, **spec: Any) -> dict[str, Any]:
    target = Target(env="prod", timeout=1.0, secrets=spec.pop("secrets", ()))
    base = spec.pop("base", f"http://127.0.0.1:{server.port}")
    out = http.run({"http": spec.pop("path", "/health"), "targets": [base], **spec}, target)
    one: dict[str, Any] = out.details["targets"][0]
    return one


def raw(status: str, *lines: str) -> bytes:
    """A response head: the status line and header lines."""
    return (f"HTTP/1.1 {status}\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


def test_a_chunked_body_is_read_whole(canned: Any) -> None:
    body = raw("200 OK", "Transfer-Encoding: chunked") + b"7\r\n" + OK[:7] + b"\r\n"
    server = canned(body, 0.05, f"{len(OK) - 7:x};ext=1\r\n".encode() + OK[7:] + b"\r\n0\r\n\r\n")
    one = probe(server, expect_json={"status": "ok"})
    assert one["healthy"], one["message"]


def test_a_gzip_body_is_decoded(canned: Any) -> None:
    packed = gzip.compress(OK)
    server = canned(
        raw("200 OK", "Content-Encoding: gzip", f"Content-Length: {len(packed)}") + packed
    )
    one = probe(server, expect_json={"status": "ok"})
    assert one["healthy"], one["message"]


def test_a_body_that_ends_with_the_connection_and_an_interim_100(canned: Any) -> None:
    server = canned(raw("100 Continue"), b"HTTP/1.0 200 OK\r\n\r\n<p>hello", 0.05, b" world</p>")
    one = probe(server, expect_body="hello world")
    assert one["healthy"], one["message"]


def test_a_chunked_body_over_the_cap_fails_as_a_body(canned: Any) -> None:
    server = canned(
        raw("200 OK", "Transfer-Encoding: chunked") + b"800\r\n" + b"[" * 2048 + b"\r\n"
    )
    one = probe(server, expect_json={"a": 1}, max_body_bytes=1000)
    assert not one["healthy"]
    assert one["message"] == "response body larger than 1000 bytes (max_body_bytes)"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            (b"SSH-2.0-OpenSSH_9.6\r\n\r\n",),
            "failed: not an HTTP/1.x response: 'SSH-2.0-OpenSSH_9.6'",
        ),
        ((), "closed the connection without a response"),
        (
            (raw("200 OK", "Content-Length: 100") + OK,),
            "failed: the connection closed in the middle of the response body",
        ),
        (
            (raw("200 OK", "Transfer-Encoding: chunked") + b"zz\r\n",),
            "failed: malformed chunked body: chunk size b'zz'",
        ),
        ((raw("200 OK", "Content-Length: ten"),), "failed: invalid Content-Length 'ten'"),
        ((raw("200 OK", " folded: no"),), "failed: malformed header line ' folded: no'"),
    ],
    ids=["not http", "closed early", "body cut", "bad chunk", "bad length", "bad header"],
)
def test_answers_that_are_not_http_fail_on_one_line(
    canned: Any, reply: tuple[bytes, ...], message: str
) -> None:
    server = canned(*reply)
    one = probe(server, expect_json={"status": "ok"})
    assert not one["healthy"]
    assert one["reason"] == "connection"
    assert one["message"].endswith(message), one["message"]
    assert f"127.0.0.1:{server.port}" in one["message"]


def test_the_request_it_sends(canned: Any) -> None:
    server = canned(raw("200 OK", f"Content-Length: {len(OK)}") + OK)
    base = f"http://agent:s3cr3t-pass@127.0.0.1:{server.port}/prefix"
    one = probe(server, base=base, path="/health check?x=1", headers={"X-Team": "sre"})
    assert one["healthy"], one["message"]
    assert "s3cr3t-pass" not in one["target"]
    lines = server.requests[0].decode().split("\r\n")
    assert lines[0] == "GET /prefix/health%20check?x=1 HTTP/1.1"
    sent = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert sent["Host"] == f"127.0.0.1:{server.port}"
    assert sent["Connection"] == "close"
    assert sent["X-Team"] == "sre"
    assert sent["User-Agent"] == "pytest-promotion"
    assert sent["Authorization"] == "Basic YWdlbnQ6czNjcjN0LXBhc3M="  # agent:s3cr3t-pass


def test_server_name_is_the_host_header(canned: Any) -> None:
    server = canned(raw("200 OK", "Content-Length: 0"))
    one = probe(server, server_name="agent.example.com")
    assert one["healthy"], one["message"]
    assert f"Host: agent.example.com:{server.port}\r\n" in server.requests[0].decode()


def test_an_origin_the_environment_proxies_goes_through_the_proxy(
    canned: Any, loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"agent-{loop_kind}.invalid"  # proxies_for caches per origin for the process
    proxy = canned(raw("200 OK", f"Content-Length: {len(OK)}") + OK)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("no_proxy", "direct.invalid")
    target = Target(env="prod", timeout=1.0)
    spec = {"http": "/health", "expect_json": {"status": "ok"}}
    out = http.run({**spec, "targets": [f"http://{name}:8080", "http://direct.invalid"]}, target)
    proxied, direct = out.details["targets"]
    assert proxied["healthy"], proxied["message"]
    assert proxy.requests[0].startswith(f"GET http://{name}:8080/health HTTP/1.1\r\n".encode())
    assert not direct["healthy"]  # no_proxy: asked directly, and the name does not resolve
    assert direct["reason"] == "dns", direct["message"]
    assert len(proxy.requests) == 1


BASES = [
    "http://h",
    "https://u:p@h:8443/x/",
    "http://h/a/../b",
    "http://h/a?x=1",
    "http://h/a#f",
    "http://[::1]:8/x",
    "http://h/a;p",
    "http://10.0.0.7:5/p/q//",
]
PATHS = ["/health", "health", "/a/b?x=1&y=2", "/", "", "/a/../b", "./x", "//x", "/x;y"]


@pytest.mark.parametrize("base", BASES)
def test_a_targets_url_is_its_base_joined_with_the_path_as_urljoin_does(base: str) -> None:
    from urllib.parse import urljoin

    from pytest_promotion.checks.aio_http import join

    for path in PATHS:
        assert join(base, path) == urljoin(base.rstrip("/") + "/", path.lstrip("/")), path
