"""One HTTP/1.1 request on one new connection, on an asyncio protocol: the fleet engine's
direct ``http`` probes.

A fleet probe is always the same exchange: connect (TLS verified when https), send one
request with ``Connection: close``, read the head, read the body up to a cap, hang up.
aiohttp's client spent about 0.55 ms of CPU per such probe here (session, connector,
happy eyeballs, request and response objects); on this protocol a whole probe costs
about 0.15 ms, half of it the kernel's connect, so that thousands of probes fit in the
time of one timeout. Proxied origins still go through aiohttp (:mod:`.aio_proxy`), which
speaks CONNECT.

What it reads: a status line ``HTTP/1.x NNN``, headers (at most 64 KiB of them; repeated
ones joined by ``", "``), interim 1xx answers skipped, then the body framed by
``Transfer-Encoding: chunked``, ``Content-Length`` or the end of the connection (none
after HEAD, 204 and 304), gzip and deflate decoded; at most ``cap`` bytes are kept and
the connection is dropped as soon as more arrive. Anything else is a
:class:`ProtocolError` with one line saying what.
"""

from __future__ import annotations

import asyncio
import base64
import re
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, quote, unquote

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


class _Wire(asyncio.Protocol):
    """Sends the request, parses the answer; ``head`` and ``body`` complete as it arrives."""

    def __init__(self, request: bytes, cap: int, bodyless: bool) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.cap = cap
        self.bodyless = bodyless
        self.head: asyncio.Future[Reply] = loop.create_future()
        self.body: asyncio.Future[bytes] = loop.create_future()
        self.buffer = bytearray()
        self.state = "head"  # then length, chunk-size, chunk-data, chunk-end, close; done
        self.left = 0
        self.kept = bytearray()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.state == "done":
            return
        self.buffer += data
        try:
            self._advance()
        except ProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # the transport closes itself: connection_lost says what it meant

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state == "close":
            self._done()
        elif self.state == "head":
            self._fail(exc if isinstance(exc, OSError) else ClosedEarly())
        elif self.state != "done":
            self._fail(exc if isinstance(exc, OSError) else ProtocolError(_CUT))

    def _fail(self, exc: Exception) -> None:
        self.state = "done"
        for future in (self.head, self.body):
            if not future.done():
                future.set_exception(exc)
                future.exception()  # marked as seen: no "exception never retrieved" log
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _done(self) -> None:
        self.state = "done"
        if not self.body.done():
            self.body.set_result(bytes(self.kept))
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _keep(self, data: bytes | bytearray) -> None:
        self.kept += data
        if len(self.kept) > self.cap:  # enough: the rest is never read
            self._done()

    def _advance(self) -> None:
        while self.buffer and self.state != "done":
            state = self.state
            if state == "head":
                if not self._head():
                    return
            elif state in ("length", "chunk-data"):
                piece = self.buffer[: self.left]
                del self.buffer[: self.left]
                self.left -= len(piece)
                self._keep(piece)
                if self.left == 0 and self.state != "done":
                    if state == "length":
                        self._done()
                    else:
                        self.state = "chunk-end"
            elif state == "close":
                self._keep(self.buffer)
                self.buffer.clear()
            elif not self._chunk_line(state):
                return

    def _chunk_line(self, state: str) -> bool:
        end = self.buffer.find(b"\r\n")
        if end < 0:
            if len(self.buffer) > 4096:
                raise ProtocolError("malformed chunked body: a chunk line too long")
            return False
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        if state == "chunk-end":
            if line:
                raise ProtocolError("malformed chunked body: no line end after a chunk")
            self.state = "chunk-size"
            return True
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"malformed chunked body: chunk size {line[:20]!r}") from None
        if size == 0:  # the last chunk (trailers are not read)
            self._done()
        else:
            self.state, self.left = "chunk-data", size
        return True

    def _head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES} bytes")
            return False
        if end > MAX_HEAD_BYTES:
            raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES} bytes")
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        status = _status(lines[0])
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return True
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise ProtocolError(f"malformed header line {line[:40]!r}")
            key, value = name.lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.head.set_result(Reply(status, headers, self.body))
        self._frame(status, headers)
        return True

    def _frame(self, status: int, headers: dict[str, str]) -> None:
        if self.bodyless or status in (204, 304):
            self.state = "close"
            self._done()
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = "chunk-size"
        elif "content-length" in headers:
            length = headers["content-length"].strip()
            if "," in length:  # the same length repeated is one length
                values = {v.strip() for v in length.split(",")}
                length = values.pop() if len(values) == 1 else ""
            if not length.isdigit():
                raise ProtocolError(f"invalid Content-Length {headers['content-length'][:40]!r}")
            self.state, self.left = "length", int(length)
            if self.left == 0:
                self.state = "close"
                self._done()
        else:
            self.state = "close"  # the body ends with the connection


def _status(line: str) -> int:
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit() or rest[3:4] not in ("", " "):
        raise ProtocolError(f"not an HTTP/1.x response: {line[:40]!r}")
    return int(code)


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
