"""The fleet engine's ``http`` probes of origins the environment sends through a proxy
(``http_proxy``/``https_proxy``, ``no_proxy`` honoured), on aiohttp, which speaks the
proxy's protocol (CONNECT for https). Imported only when a target needs it: every other
target goes through :mod:`.aio_wire`. The rules are :class:`.aio_http.HttpProbe`'s."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from .aio_http import _PORTS, HttpProbe, Reply, Verdict, _origin, _where
from .aio_net import Result, failure

__all__ = ["ProxiedClient"]


class _AiohttpReply(Reply):
    def __init__(
        self, response: aiohttp.ClientResponse, fail: Callable[[aiohttp.ClientError], Result]
    ) -> None:
        self.response = response
        self.status = response.status
        self.fail = fail

    def header(self, name: str) -> str | None:
        return self.response.headers.get(name)

    async def read(self, cap: int) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := await self.response.content.read(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    return b"".join(chunks)[:cap], True
        except aiohttp.ClientError as exc:
            raise Verdict(self.fail(exc)) from None
        return b"".join(chunks), False


class ProxiedClient:
    """One aiohttp session (no keep-alive) for a probe's proxied targets."""

    def __init__(self, probe: HttpProbe) -> None:
        self.probe = probe
        self.session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()

    @contextlib.asynccontextmanager
    async def open(self, member: str, method: str, url: str, proxy: str) -> AsyncIterator[Reply]:
        probe = self.probe
        if self.session is None:
            connector = aiohttp.TCPConnector(limit=0, force_close=True, ttl_dns_cache=60)
            self.session = aiohttp.ClientSession(
                connector=connector, trust_env=False, timeout=aiohttp.ClientTimeout(total=None)
            )
        options: dict[str, Any] = {"headers": dict(probe.headers), "allow_redirects": False}
        scheme, _host, port = _origin(url)
        if scheme == "https":
            options["ssl"] = probe.context
        if probe.server_name:
            if scheme == "https":
                options["server_hostname"] = probe.server_name
            default = port == _PORTS[scheme]
            options["headers"]["Host"] = probe.server_name + ("" if default else f":{port}")

        def fail(exc: aiohttp.ClientError) -> Result:
            return self.error(member, url, exc)

        try:
            async with self.session.request(method, url, proxy=proxy, **options) as r:
                yield _AiohttpReply(r, fail)
        except aiohttp.ClientError as exc:
            raise Verdict(fail(exc)) from None

    def error(self, member: str, url: str, exc: aiohttp.ClientError) -> Result:
        where = _where(url)
        inner = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None)
        if isinstance(inner, ssl.SSLError) or isinstance(exc, aiohttp.ClientSSLError):
            return self.probe.tls_failure(member, url, inner or exc)
        if isinstance(inner, OSError):
            return failure(member, inner, where, self.probe.budget, "no response")
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            text = f"{where} closed the connection without a response"
            return Result(member, False, "connection", text)
        text = f"request to {where} failed: {type(exc).__name__}: {exc}"
        return Result(member, False, "connection", text)
