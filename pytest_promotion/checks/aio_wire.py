"""One HTTP/1.1 request on one new connection, on an asyncio protocol: the fleet engine's
direct ``http`` probes.

A fleet probe is always the same exchange: connect (TLS verified when https), send one
request with ``Connection: close``, read the head, read the body up to a cap, hang up.
aiohttp's client spent about 0.55 ms of CPU per such probe here (session, connector,
happy eyeballs, request and response objects); on this protocol a whole probe costs
about 0.15 ms, half of it the kernel's connect, so that thousands of probes fit in the
time of one timeout. Proxied origins still go through aiohttp (:mod:`.aio_proxy`), which
speaks CONNECT.

Parsing is llhttp's (Node.js's HTTP parser, through MagicStack's httptools binding, as
uvicorn uses it): a status line ``HTTP/1.x NNN``, headers (at most 64 KiB of them; repeated
ones joined by ``", "``), interim 1xx answers skipped, then the body framed by
``Transfer-Encoding: chunked``, ``Content-Length`` or the end of the connection (none
after HEAD, 204 and 304). What llhttp refuses (obs-fold, a Content-Length beside chunked,
two lengths, a length that is not digits, bare LF, control bytes...) is a
:class:`ProtocolError` with one line: the answer's first line when it is not HTTP at all,
else llhttp's reason. This module keeps the limits and the framing's end: gzip and
deflate decoded (zlib), at most ``cap`` bytes kept and the connection dropped as soon as
more arrive, and the end of the connection as the end of a body that has no length.
"""

from __future__ import annotations

import asyncio
import base64
import re
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, quote, unquote

import httptools

if TYPE_CHECKING:
    import ssl

__all__ = ["MAX_HEAD_BYTES", "ClosedEarly", "ProtocolError", "Reply", "Request", "exchange"]

MAX_HEAD_BYTES = 64 * 1024
_DEFAULTS = {
    "User-Agent": "pytest-promotion",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
}
_PATH_SAFE = "/%:@!$&'()*+,;=~-._"
_QUERY_SAFE = _PATH_SAFE + "?"
_UNSAFE = re.compile(r"[^A-Za-z0-9/%:@!$&'()*+,;=~._?-]")
_CUT = "the connection closed in the middle of the response body"


class ProtocolError(Exception):
    """The answer is not HTTP/1.x as this client reads it, or it stopped half-way."""


class ClosedEarly(ProtocolError):
    """The server closed the connection before the head of a response."""


class Reply:
    """A response head, and the body as it completes."""

    __slots__ = ("_body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: asyncio.Future[bytes]):
        self.status = status
        self.headers = headers  # lower-case names
        self._body = body

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    async def read(self, cap: int) -> tuple[bytes, bool]:
        """The body (decoded), at most ``cap`` bytes, and whether there was more."""
        raw = await self._body
        coding = self.headers.get("content-encoding", "").strip().lower()
        if coding in ("gzip", "x-gzip", "deflate") and raw:
            raw = _decode(raw, coding, cap)
        return raw[:cap], len(raw) > cap


def _decode(raw: bytes, coding: str, cap: int) -> bytes:
    """gzip or deflate (zlib-wrapped or raw), at most ``cap + 1`` bytes out."""
    tries = (zlib.MAX_WBITS | 16,) if coding != "deflate" else (zlib.MAX_WBITS, -zlib.MAX_WBITS)
    for wbits in tries:
        try:
            return zlib.decompressobj(wbits).decompress(raw, cap + 1)
        except zlib.error:
            continue
    raise ProtocolError(f"cannot decode the {coding} response body")


class Request:
    """One probe's request: every header line but ``Host`` built once, for every target.
    ``headers`` go over the defaults (names compared without case); the URL's credentials
    become Basic authorization unless the headers set one; ``Connection: close`` always."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        merged = {k.lower(): (k, v) for k, v in _DEFAULTS.items()}
        merged.update((k.lower(), (k, str(v))) for k, v in headers.items())
        self.host: str | None = merged.pop("host", ("", None))[1]  # the headers' own Host
        merged.pop("connection", None)
        self.authorized = "authorization" in merged
        self.sized = "content-length" in merged
        bad = [n for n, v in merged.values() if any(c in n + v for c in "\r\n\0")]
        self.error = f"header {bad[0]!r}: a line break in it" if bad else None
        self.block = "".join(f"{n}: {v}\r\n" for n, v in merged.values()) + "Connection: close\r\n"

    def build(self, method: str, parts: SplitResult, host: str) -> bytes:
        if self.error:
            raise ValueError(self.error)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if _UNSAFE.search(target):  # spaces, non-ASCII: percent-encoded (escapes kept)
            target = quote(parts.path or "/", safe=_PATH_SAFE)
            target += f"?{quote(parts.query, safe=_QUERY_SAFE)}" if parts.query else ""
        extra = ""
        if "@" in parts.netloc and parts.username is not None and not self.authorized:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            extra += f"Authorization: Basic {base64.b64encode(pair).decode()}\r\n"
        if method in ("POST", "PUT", "PATCH") and not self.sized:
            extra += "Content-Length: 0\r\n"
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{self.block}{extra}\r\n"
        return head.encode("utf-8")


class _Stop(Exception):
    """Raised from a parser callback once the exchange is settled: no more parsing."""


def _parse_error(exc: Exception, start: bytes, status: int) -> ProtocolError:
    """One line for what llhttp refused; before a status code, the answer's first line."""
    if status < 100:
        line = start.split(b"\r\n", 1)[0].split(b"\n", 1)[0][:40].decode("latin-1")
        return ProtocolError(f"not an HTTP/1.x response: {line!r}")
    return ProtocolError(f"malformed HTTP/1.x response: {exc}")


def _until_close(headers: dict[str, str]) -> bool:
    """Whether a body ends with the connection (llhttp's rule for a response that has a
    body: no Content-Length, and no Transfer-Encoding whose last coding is chunked)."""
    coding = headers.get("transfer-encoding", "").rstrip().lower()
    return "content-length" not in headers and not coding.endswith("chunked")


class _Wire(asyncio.Protocol):
    """Sends the request; llhttp (httptools) parses the answer; ``head`` and ``body``
    complete as it arrives. The parser calls ``on_header``, ``on_headers_complete``,
    ``on_body`` and ``on_message_complete`` (only the ones defined here: each costs)."""

    def __init__(self, request: bytes, cap: int, bodyless: bool) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.cap = cap
        self.bodyless = bodyless
        self.head: asyncio.Future[Reply] = loop.create_future()
        self.body: asyncio.Future[bytes] = loop.create_future()
        # the parser refers to this protocol: dropped once settled, else each probe would
        # leave a cycle (a dozen objects) to the garbage collector
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.fields: list[tuple[bytes, bytes]] = []
        self.start = b""  # the first read, to quote an answer that is not HTTP
        self.seen = 0  # bytes received before the final head
        self.headed = False  # the final (non-1xx) head is read
        self.headers: dict[str, str] = {}  # the final head's
        self.kept = bytearray()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:  # settled
            return
        if not self.headed:
            self.seen += len(data)
            if not self.start:
                self.start = data  # kept, not copied: only read to quote a non-HTTP answer
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # 101: llhttp stops at the switch
            self._fail(ProtocolError("the server switched protocols (101), no HTTP answer"))
        except httptools.HttpParserError as exc:
            if self.parser is not None:  # else a callback settled it and stopped the parser
                self._fail(_parse_error(exc, self.start, parser.get_status_code()))
        else:
            if not self.headed and self.seen > MAX_HEAD_BYTES:
                self._fail(ProtocolError(f"response head larger than {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        return False  # the transport closes itself: connection_lost says what it meant

    def connection_lost(self, exc: Exception | None) -> None:
        if self.parser is None:  # settled
            return
        if not self.headed:
            self._fail(exc if isinstance(exc, OSError) else ClosedEarly())
        elif _until_close(self.headers):  # httptools has no end-of-input call: the head says
            self._done()
        else:
            self._fail(exc if isinstance(exc, OSError) else ProtocolError(_CUT))

    # llhttp's callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def on_headers_complete(self) -> None:
        if self.parser is None:  # settled; llhttp goes on to the end of this read
            return
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue): llhttp reads the real one next
            self.fields.clear()
            return
        fields = self.fields
        # a head received whole in one read: data_received could not see its size
        if (
            self.seen > MAX_HEAD_BYTES
            and sum(len(n) + len(v) + 4 for n, v in fields) > MAX_HEAD_BYTES
        ):
            self._fail(ProtocolError(f"response head larger than {MAX_HEAD_BYTES} bytes"))
            raise _Stop
        headers: dict[str, str] = {}
        for raw_name, raw_value in fields:  # llhttp checked them: names are tokens
            key, value = raw_name.lower().decode("latin-1"), raw_value.strip().decode("latin-1")
            if key in headers:
                headers[key] += ", " + value
            else:
                headers[key] = value
        self.headed, self.headers = True, headers
        self.head.set_result(Reply(status, headers, self.body))
        if self.bodyless:  # HEAD: llhttp does not know the method, a Content-Length is no body
            self._done()
            raise _Stop

    def on_body(self, body: bytes) -> None:
        self.kept += body
        if len(self.kept) > self.cap:  # enough: the rest is never read
            self._done()
            raise _Stop

    def on_message_complete(self) -> None:
        if self.headed:  # else the end of an interim answer
            self._done()  # what may follow in this read is parsed, never kept (no raise:
            # an exception per probe would cost more than the rest of this callback)

    def _fail(self, exc: Exception) -> None:
        self.parser = None
        for future in (self.head, self.body):
            if not future.done():
                future.set_exception(exc)
                future.exception()  # marked as seen: no "exception never retrieved" log
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _done(self) -> None:
        self.parser = None
        if not self.body.done():
            self.body.set_result(bytes(self.kept))
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]


async def exchange(
    request: bytes,
    host: str,
    port: int,
    *,
    context: ssl.SSLContext | None,
    server_name: str | None,
    cap: int,
    bodyless: bool,
    handshake_timeout: float,
) -> tuple[Reply, asyncio.Transport]:
    """Connect, send ``request``, wait for the head. The caller aborts the transport."""
    loop = asyncio.get_running_loop()
    wire = _Wire(request, cap, bodyless)
    if context is None:
        transport, _ = await loop.create_connection(lambda: wire, host, port)
    else:
        transport, _ = await loop.create_connection(
            lambda: wire,
            host,
            port,
            ssl=context,
            server_hostname=server_name or host,
            ssl_handshake_timeout=handshake_timeout,
        )
    try:
        return await wire.head, transport
    except BaseException:
        transport.abort()
        raise
