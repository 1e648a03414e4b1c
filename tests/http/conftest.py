"""Real servers on loopback for the http, tls and tcp checks: plain HTTP, HTTPS with
trustme certificates (valid, expired, expiring, wrong host, unknown CA) and servers that
misbehave (never answer, trickle, send forever, redirect elsewhere)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        path = self.path.split("?")[0]
        self.server.requests.append(
            {"method": self.command, "path": path, "headers": dict(self.headers)}
        )
        route = self.server.routes.get(path)
        if route is None:
            self.reply(404, b"not found", "text/plain")
        else:
            route(self)

    do_GET = do_HEAD = do_POST = _dispatch

    def reply(
        self,
        status: int,
        body: bytes | str | Any,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def redirect(self, location: str, status: int = 302) -> None:
        self.reply(status, b"", "text/plain", {"Location": location})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        routes: dict[str, Route],
        host: str,
        context: ssl.SSLContext | None,
        stop: threading.Event,
    ) -> None:
        self.routes = routes
        self.context = context
        self.stop = stop
        self.requests: list[dict[str, Any]] = []
        super().__init__((host, 0), Handler)
        scheme = "https" if context else "http"
        name = "localhost" if host == "127.0.0.1" and context else host
        self.url = f"{scheme}://{name}:{self.server_address[1]}"
        self.port: int = self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        try:  # the handshake in the connection's thread, not in the accept loop
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up on purpose are the point of several tests


def trickle(handler: Handler) -> None:
    """Headers at once, then one byte a second."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "20")
    handler.end_headers()
    handler.wfile.flush()
    for _ in range(20):
        if handler.server.stop.wait(1.0):
            return
        handler.wfile.write(b" ")
        handler.wfile.flush()


def endless(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.end_headers()
    chunk = b"[" * 65536
    while not handler.server.stop.is_set():
        handler.wfile.write(chunk)


def slow_headers(handler: Handler) -> None:
    time.sleep(0.3)
    handler.reply(200, {"status": "ok"})


def echo_auth(handler: Handler) -> None:
    handler.reply(500, {"error": "denied", "got": handler.headers.get("Authorization", "")})


ROUTES: dict[str, Route] = {
    "/health": lambda h: h.reply(
        200, {"status": "ok", "checks": {"db": "ok"}, "items": [{"n": 1}]}
    ),
    "/down": lambda h: h.reply(200, {"status": "DOWN", "checks": {"db": "DOWN"}}),
    "/unavailable": lambda h: h.reply(503, {"status": "error"}),
    "/html": lambda h: h.reply(200, "<!doctype html><p>hello</p>", "text/html"),
    "/trickle": trickle,
    "/endless": endless,
    "/slow": slow_headers,
    "/echo-auth": echo_auth,
    "/redirect-same": lambda h: h.redirect("/health"),
    "/loop": lambda h: h.redirect("/loop"),
}


class Servers:
    def __init__(self, tmp: Path) -> None:
        self.stop = threading.Event()
        self.servers: list[Server] = []
        self.listeners: list[socket.socket] = []
        self.ca = trustme.CA()
        self.other_ca = trustme.CA()
        self.ca_file = tmp / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def http(self, routes: dict[str, Route] | None = None, host: str = "127.0.0.1") -> Server:
        return self._start(routes, host, None)

    def https(
        self,
        routes: dict[str, Route] | None = None,
        *identities: str,
        ca: trustme.CA | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        max_version: ssl.TLSVersion | None = None,
    ) -> Server:
        cert = (ca or self.ca).issue_cert(
            *(identities or ("localhost", "127.0.0.1")), not_before=not_before, not_after=not_after
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        if max_version is not None:
            context.maximum_version = max_version
        return self._start(routes, "127.0.0.1", context)

    def _start(
        self, routes: dict[str, Route] | None, host: str, context: ssl.SSLContext | None
    ) -> Server:
        server = Server({**ROUTES, **(routes or {})}, host, context, self.stop)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.servers.append(server)
        return server

    def silent(self) -> int:
        """A port that accepts connections and never says a word."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.listeners.append(listener)
        return int(listener.getsockname()[1])

    def trickler(self, first: bytes = b"\x16\x03\x03\x40\x00") -> int:
        """A port that sends ``first`` (a TLS record header), then one byte every 0.2 s."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.1)
        self.listeners.append(listener)

        def serve() -> None:
            while not self.stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                with conn:
                    try:
                        conn.sendall(first)
                        while not self.stop.wait(0.2):
                            conn.sendall(b"\x00")
                    except OSError:
                        pass

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    def close(self) -> None:
        self.stop.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for listener in self.listeners:
            listener.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    s = Servers(tmp_path)
    yield s
    s.close()


def days(n: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=n)
