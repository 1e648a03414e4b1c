"""The event-loop engine's ``http`` probe: :mod:`.aio_wire` for direct connections,
:mod:`.aio_proxy` (aiohttp) for origins the environment sends through a proxy.

The rules of the threaded kind (:mod:`.http` over :class:`~.http_session.BoundSession`):
the whole exchange (connect, headers, body) within the timeout, the body read up to
``max_body_bytes``, redirects followed only within the same scheme, host and port (at
most five), TLS verified with the shared client context (:func:`.tls.client_context`,
the target's ``ca_bundle`` or the system store), secrets masked, one line per failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import ssl
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlsplit

from ..redact import redact, redact_url
from . import aio_wire
from .aio_net import Result, failure
from .base import Target
from .http import _check_json
from .http_session import _QUERY_SECRET, _SENSITIVE, MAX_BODY_BYTES, MAX_REDIRECTS

if TYPE_CHECKING:
    from .aio_proxy import ProxiedClient

__all__ = ["HttpProbe", "base_url"]

_PORTS = {"http": 80, "https": 443}


def base_url(member: str, scheme: str) -> str:
    """A target as a base URL: ``10.0.0.7:8443`` gets ``scheme://`` in front."""
    return member if "://" in member else f"{scheme}://{member}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or _PORTS.get(parts.scheme)


def _where(url: str) -> str:
    _scheme, host, port = _origin(url)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _codec(charset: str | None) -> str:
    import codecs

    try:
        return codecs.lookup(charset or "utf-8").name
    except LookupError:
        return "utf-8"


def _charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


class Verdict(Exception):
    """A probe decided inside a client (the proxied path's errors, turned into a Result)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.message)
        self.result = result


class Reply:
    """What a probe reads of an answer, whichever client got it."""

    status: int

    def header(self, name: str) -> str | None:
        raise NotImplementedError

    async def read(self, cap: int) -> tuple[bytes, bool]:
        raise NotImplementedError


@dataclasses.dataclass
class _Answer:
    """What :func:`.http._check_json` reads of a response."""

    content: bytes
    headers: Mapping[str, str]


def _may_proxy() -> bool:
    """Whether any origin may have a proxy. On Linux only ``http_proxy``/``https_proxy``
    set one (``no_proxy`` alone does not): without them no origin is looked up (nor is
    requests imported to do it). Elsewhere the system's settings may: every origin is."""
    if not sys.platform.startswith("linux"):
        return True
    return any(k.lower() in ("http_proxy", "https_proxy") and v for k, v in os.environ.items())


def join(base: str, path: str) -> str:
    """``urljoin(base + "/", path)`` (each target's base URL and the check's path), without
    its cost where it would change nothing: no query, fragment, parameters or dot segment."""
    head, rel = base.rstrip("/") + "/", path.lstrip("/")
    if any(c in head for c in "?#;") or "/." in head or ";" in rel or "/." in "/" + rel:
        return urljoin(head, rel)
    return head + rel


class _Hop:
    """Where an exchange is: the URL of its current request, and what has not arrived."""

    __slots__ = ("stage", "url")

    def __init__(self, url: str) -> None:
        self.url, self.stage = url, "no response"


class _Direct:
    """The async context of one direct exchange: the reply, then the connection dropped."""

    __slots__ = ("bodyless", "host", "port", "probe", "tls", "transport", "wire")

    def __init__(
        self, probe: HttpProbe, wire: bytes, host: str, port: int, tls: bool, bodyless: bool
    ) -> None:
        self.probe, self.wire, self.host, self.port = probe, wire, host, port
        self.tls, self.bodyless = tls, bodyless
        self.transport: asyncio.Transport | None = None

    async def __aenter__(self) -> Reply:
        probe = self.probe
        reply, self.transport = await aio_wire.exchange(
            self.wire,
            self.host,
            self.port,
            context=probe.context if self.tls else None,
            server_name=probe.server_name,
            cap=probe.cap,
            bodyless=self.bodyless,
            handshake_timeout=probe.budget,
        )
        return cast(Reply, reply)

    async def __aexit__(self, *exc: object) -> None:
        if self.transport is not None:
            self.transport.abort()


class HttpProbe:
    """One http check's rules, applied to each target's base URL. Close with :meth:`aclose`."""

    def __init__(self, spec: Mapping[str, Any], target: Target) -> None:
        from .http_transport import environment_ca_bundle

        self.spec = spec
        self.target = target
        self.path = str(spec["http"])
        self.method = str(spec.get("method", "GET")).upper()
        self.budget = float(spec.get("timeout", target.timeout))
        self.cap = int(spec.get("max_body_bytes", MAX_BODY_BYTES))
        status = spec.get("expect_status", [])
        self.statuses = [status] if isinstance(status, int) else list(status)
        self.max_ms = spec.get("max_latency_ms")
        self.scheme = str(spec.get("scheme", "https"))
        self.server_name: str | None = spec.get("server_name")
        self.headers = {"User-Agent": "pytest-promotion", **dict(spec.get("headers", {}))}
        self.request = aio_wire.Request(self.headers)
        self._masked: dict[str, str] = {}  # message -> masked (most are alike: "200 in 3 ms")
        sensitive = [v for k, v in self.headers.items() if _SENSITIVE.search(k)]
        self.secrets = (*target.secrets, *sensitive)
        self.needs_body = "expect_json" in spec or "expect_body" in spec
        trust = target
        if not target.ca_bundle and environment_ca_bundle():
            trust = dataclasses.replace(target, ca_bundle=environment_ca_bundle())
        self.ca = str(trust.path(trust.ca_bundle)) if trust.ca_bundle else None
        self._trust = trust
        self._context: ssl.SSLContext | None = None
        self._proxies: dict[tuple[str, str, int | None], str | None] = {}
        self._proxy_env = _may_proxy()
        self._proxied: ProxiedClient | None = None

    @property
    def context(self) -> ssl.SSLContext:
        """The shared client context, built on the first https target (loading the system
        store costs ~0.1 s of CPU a plain-http fleet need not pay)."""
        if self._context is None:
            from .tls import client_context

            self._context = client_context(self._trust, not self.target.insecure)
        return self._context

    async def aclose(self) -> None:
        if self._proxied is not None:
            await self._proxied.aclose()

    def redact(self, text: str) -> str:
        return redact(_QUERY_SECRET.sub(r"\1***", redact_url(text)), self.secrets)

    async def __call__(self, member: str) -> Result:
        url = join(base_url(member, self.scheme), self.path)
        try:
            origin = _origin(url)
        except ValueError as exc:  # a port out of range
            return Result(member, False, "connection", f"target {member!r}: {exc}")
        if origin[0] not in _PORTS or not origin[1]:
            return Result(member, False, "connection", f"target {member!r}: not an http(s) URL")
        result = await self._exchange(member, url, origin)
        message = result.message
        if message not in self._masked:
            self._masked[message] = self.redact(message)
        result.message = self._masked[message]
        return result

    def _proxy(self, origin: tuple[str, str, int | None]) -> str | None:
        """The environment's proxy for one origin, worked out once per origin."""
        if not self._proxy_env:
            return None
        if origin not in self._proxies:
            from .http_transport import proxies_for

            self._proxies[origin] = proxies_for(*origin).get(origin[0])
        return self._proxies[origin]

    def _open(
        self, member: str, method: str, url: str, origin: tuple[str, str, int | None]
    ) -> contextlib.AbstractAsyncContextManager[Reply]:
        proxy = self._proxy(origin)
        if proxy:
            if self._proxied is None:
                from .aio_proxy import ProxiedClient

                self._proxied = ProxiedClient(self)
            return self._proxied.open(member, method, url, proxy)
        return self._direct(method, url, origin)

    def _direct(self, method: str, url: str, origin: tuple[str, str, int | None]) -> _Direct:
        scheme, host, port = origin
        assert port is not None  # _origin gives http(s) URLs their default port
        name = self.server_name or (f"[{host}]" if ":" in host else host)
        host_header = name if port == _PORTS[scheme] else f"{name}:{port}"
        if self.request.host and not self.server_name:
            host_header = self.request.host
        wire = self.request.build(method, urlsplit(url), host_header)
        return _Direct(self, wire, host, port, scheme == "https", method == "HEAD")

    async def _exchange(self, member: str, url: str, origin: tuple[str, str, int | None]) -> Result:
        hop = _Hop(url)
        try:
            async with asyncio.timeout(self.budget):
                return await self._follow(member, hop, origin, time.monotonic())
        except TimeoutError:
            return Result(member, False, "timeout", f"{hop.stage} within {self.budget:g} s")
        except Verdict as verdict:
            return verdict.result
        except (aio_wire.ProtocolError, OSError, ValueError) as exc:
            return self._failed(member, hop, exc)

    async def _follow(
        self, member: str, hop: _Hop, origin: tuple[str, str, int | None], start: float
    ) -> Result:
        """The request, and the redirects it may follow (same origin, at most five)."""
        method, url = self.method, hop.url
        for _hop in range(MAX_REDIRECTS + 1):
            hop.url, hop.stage = url, "no response"
            async with self._open(member, method, url, origin) as r:
                location = r.header("Location")
                redirect = r.status in (301, 302, 303, 307, 308) and location
                if not redirect or r.status in self.statuses:
                    latency = round((time.monotonic() - start) * 1000, 1)
                    hop.stage = "response body not complete"
                    body, truncated = await r.read(self.cap)
                    if latency > self.budget * 1000:  # the loop fired the timer late
                        hop.stage = "no response"
                    if time.monotonic() - start > self.budget:
                        raise TimeoutError
                    return self._judge(member, r, body, truncated, latency)
                following = urljoin(url, str(location))
                if _origin(following) != origin:
                    what = "scheme" if _origin(following)[0] != origin[0] else "host"
                    note = f"redirect to {following} not followed (another {what})"
                    return self._status(member, r.status, note)
            if r.status in (301, 302, 303) and method not in ("GET", "HEAD"):
                method = "GET"
            url = following
        text = f"too many redirects (more than {MAX_REDIRECTS})"
        return Result(member, False, "status", text)

    def _failed(self, member: str, hop: _Hop, exc: Exception) -> Result:
        """One line for what kept the exchange from an answer."""
        where = _where(hop.url)
        if isinstance(exc, ssl.SSLError | ssl.SSLCertVerificationError):
            return self.tls_failure(member, hop.url, exc)
        if isinstance(exc, aio_wire.ClosedEarly):
            return Result(
                member, False, "connection", f"{where} closed the connection without a response"
            )
        if isinstance(exc, aio_wire.ProtocolError | ValueError):
            return Result(member, False, "connection", f"request to {where} failed: {exc}")
        return failure(member, exc, where, self.budget, hop.stage)

    def tls_failure(self, member: str, url: str, exc: BaseException) -> Result:
        from .tls import describe_ssl_error

        name = self.server_name or _origin(url)[1]
        text = describe_ssl_error(exc, name, self.ca) or f"TLS error with {_where(url)}"
        return Result(member, False, "TLS", text)

    def _status(self, member: str, code: int, note: str = "") -> Result:
        want = " or ".join(map(str, self.statuses)) if self.statuses else "2xx"
        text = f"expected {want}, got {code}" + (f" ({note})" if note else "")
        return Result(member, False, "status", text)

    def _judge(self, member: str, r: Reply, body: bytes, truncated: bool, ms: float) -> Result:
        code = r.status
        if (code not in self.statuses) if self.statuses else not 200 <= code < 300:
            return self._status(member, code)
        problems: list[str] = []
        if self.needs_body and truncated:
            problems.append(f"response body larger than {self.cap} bytes (max_body_bytes)")
        elif "expect_json" in self.spec:
            content_type = r.header("Content-Type")
            answer = _Answer(body, {"Content-Type": content_type} if content_type else {})
            problems += _check_json(cast(Any, answer), self.spec["expect_json"])
        pattern = self.spec.get("expect_body")
        if self.needs_body and not truncated and pattern:
            text = body.decode(_codec(_charset(r.header("Content-Type"))), "replace")
            if not re.search(pattern, text):
                problems.append(f"body does not match /{pattern}/")
        if problems:
            return Result(member, False, "body", "; ".join(problems), ms)
        if self.max_ms is not None and ms > self.max_ms:
            return Result(member, False, "latency", f"{ms:.0f} ms > {self.max_ms:g} ms", ms)
        return Result(member, True, "ok", f"{code} in {ms:.0f} ms", ms)
