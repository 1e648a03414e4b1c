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
            "failed: malformed HTTP/1.x response: Invalid character in chunk size",
        ),
        (
            (raw("200 OK", "Content-Length: ten"),),
            "failed: malformed HTTP/1.x response: Invalid character in Content-Length",
        ),
        (
            (raw("200 OK", " folded: no"),),
            "failed: malformed HTTP/1.x response: Unexpected space after start line",
        ),
        (
            (raw("101 Switching Protocols", "Upgrade: websocket", "Connection: upgrade"),),
            "failed: the server switched protocols (101), no HTTP answer",
        ),
        (
            (raw("200 OK", "X-Big: " + "a" * 70_000, f"Content-Length: {len(OK)}") + OK,),
            "failed: response head larger than 65536 bytes",
        ),
        (
            (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000, 0.2, b"\r\n\r\n"),
            "failed: response head larger than 65536 bytes",
        ),
    ],
    ids=[
        "not http",
        "closed early",
        "body cut",
        "bad chunk",
        "bad length",
        "bad header",
        "switched protocols",
        "head too large",
        "head too large, streamed",
    ],
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


# Answers the engine's earlier hand-written parser took, or took its own way, and llhttp
# refuses: each an ambiguity that lets two readers of one stream see different responses
# (request smuggling's raw material). Refused means unhealthy, reason "connection", one line.
AMBIGUOUS = {
    "obs-fold continuation line": raw("200 OK", "X-A: 1", " folded", f"Content-Length: {len(OK)}"),
    "space before the colon": raw("200 OK", f"Content-Length : {len(OK)}"),
    "space in a header name": raw("200 OK", "X Y: 1", f"Content-Length: {len(OK)}"),
    "control byte in a value": raw("200 OK", "X-A: a\x01b", f"Content-Length: {len(OK)}"),
    "chunked and Content-Length": raw(
        "200 OK", "Transfer-Encoding: chunked", f"Content-Length: {len(OK)}"
    ),
    "two different Content-Lengths": raw("200 OK", "Content-Length: 16", "Content-Length: 4"),
    "Content-Length with a sign": raw("200 OK", "Content-Length: +16"),
    "Content-Length in a non-ASCII digit": raw("200 OK", "Content-Length: 1\u00b2"),
    "chunk size in 0x notation": raw("200 OK", "Transfer-Encoding: chunked") + b"0x10\r\n",
    "bare LF line ends": b"HTTP/1.1 200 OK\nContent-Length: 16\n\n",
}


@pytest.mark.parametrize("reply", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_ambiguous_framing_or_headers_are_refused(canned: Any, reply: bytes) -> None:
    body = b"" if b"chunked" in reply and b"0x10" in reply else OK
    server = canned(reply + body)
    one = probe(server, expect_json={"status": "ok"})
    assert not one["healthy"], one["message"]
    assert one["reason"] == "connection"
    assert one["message"].startswith(
        f"request to 127.0.0.1:{server.port} failed: malformed HTTP/1.x response: "
    ), one["message"]
    assert "\n" not in one["message"]


@pytest.mark.parametrize(
    "reply",
    [
        raw("204 No Content", "Content-Length: 5") + b"extra",
        raw("304 Not Modified", "Content-Length: 5"),
    ],
    ids=["204", "304"],
)
def test_a_204_or_304_has_no_body_whatever_its_headers_say(canned: Any, reply: bytes) -> None:
    server = canned(reply, 2.0)  # holds the connection open: no body is awaited
    one = probe(server, expect_status=[204, 304])
    assert one["healthy"], one["message"]


def test_a_head_request_reads_no_body(canned: Any) -> None:
    server = canned(raw("200 OK", "Content-Length: 5000"), 2.0)
    one = probe(server, method="HEAD")
    assert one["healthy"], one["message"]
    assert server.requests[0].startswith(b"HEAD /health HTTP/1.1\r\n")


def test_a_body_over_the_cap_until_close_drops_the_connection(canned: Any) -> None:
    server = canned(b"HTTP/1.0 200 OK\r\n\r\n" + b"[" * 2048, 2.0)  # never closes itself
    one = probe(server, expect_json={"a": 1}, max_body_bytes=1000)
    assert not one["healthy"]
    assert one["message"] == "response body larger than 1000 bytes (max_body_bytes)"


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
