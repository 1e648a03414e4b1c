"""The event-loop engine's ``http`` probe, on aiohttp.

The rules of the threaded kind (:mod:`.http` over :class:`~.http_session.BoundSession`):
the whole exchange (connect, headers, body) within the timeout, the body read up to
``max_body_bytes``, redirects followed only within the same scheme, host and port (at
most five), TLS verified with the shared client context (:func:`.tls.client_context`,
the target's ``ca_bundle`` or the system store), secrets masked, one line per failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlsplit

from ..redact import redact, redact_url
from .aio_net import Result, failure
from .base import Target
from .http_session import _QUERY_SECRET, _SENSITIVE, MAX_BODY_BYTES, MAX_REDIRECTS

if TYPE_CHECKING:
    import ssl

    import aiohttp

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


@dataclasses.dataclass
class _Answer:
    """What :func:`.http._check_json` reads of a response."""

    content: bytes
    headers: Mapping[str, str]


class HttpProbe:
    """One http check's rules, applied to each target's base URL on a shared session."""

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
        sensitive = [v for k, v in self.headers.items() if _SENSITIVE.search(k)]
        self.secrets = (*target.secrets, *sensitive)
        trust = target
        if not target.ca_bundle and environment_ca_bundle():
            trust = dataclasses.replace(target, ca_bundle=environment_ca_bundle())
        self.ca = str(trust.path(trust.ca_bundle)) if trust.ca_bundle else None
        self._trust = trust
        self._context: ssl.SSLContext | None = None

    @property
    def context(self) -> ssl.SSLContext:
        """The shared client context, built on the first https target (loading the system
        store costs ~0.1 s of CPU a plain-http fleet need not pay)."""
        from .tls import client_context

        if self._context is None:
            self._context = client_context(self._trust, not self.target.insecure)
        return self._context

    def redact(self, text: str) -> str:
        return redact(_QUERY_SECRET.sub(r"\1***", redact_url(text)), self.secrets)

    async def __call__(self, session: aiohttp.ClientSession, member: str) -> Result:
        base = base_url(member, self.scheme)
        url = urljoin(base.rstrip("/") + "/", self.path.lstrip("/"))
        if _origin(url)[0] not in _PORTS:
            return Result(member, False, "connection", f"target {member!r}: not an http(s) URL")
        result = await self._exchange(session, member, url)
        result.message = self.redact(result.message)
        return result

    def _request_options(self, url: str) -> dict[str, Any]:
        from .http_transport import proxies_for

        options: dict[str, Any] = {"headers": dict(self.headers), "allow_redirects": False}
        scheme, host, port = _origin(url)
        if scheme == "https":
            options["ssl"] = self.context
        if self.server_name:
            if scheme == "https":
                options["server_hostname"] = self.server_name
            default = port == _PORTS[scheme]
            options["headers"]["Host"] = self.server_name + ("" if default else f":{port}")
        proxy = proxies_for(scheme, host, port).get(scheme)
        if proxy:
            options["proxy"] = proxy
        return options

    async def _exchange(self, session: aiohttp.ClientSession, member: str, url: str) -> Result:
        import aiohttp

        start = time.monotonic()
        stage = "no response"
        try:
            async with asyncio.timeout(self.budget):
                method = self.method
                for _hop in range(MAX_REDIRECTS + 1):
                    stage = "no response"
                    async with session.request(method, url, **self._request_options(url)) as r:
                        location = r.headers.get("Location")
                        redirect = r.status in (301, 302, 303, 307, 308) and location
                        if not redirect or r.status in self.statuses:
                            latency = round((time.monotonic() - start) * 1000, 1)
                            stage = "response body not complete"
                            body, truncated = await self._read(r)
                            if latency > self.budget * 1000:  # the loop fired the timer late
                                stage = "no response"
                            if time.monotonic() - start > self.budget:
                                raise TimeoutError
                            return self._judge(member, r, body, truncated, latency)
                        following = urljoin(url, location)
                        if _origin(following) != _origin(url):
                            what = "scheme" if _origin(following)[0] != _origin(url)[0] else "host"
                            note = f"redirect to {following} not followed (another {what})"
                            return self._status(member, r.status, note)
                    if r.status in (301, 302, 303) and method not in ("GET", "HEAD"):
                        method = "GET"
                    url = following
                text = f"too many redirects (more than {MAX_REDIRECTS})"
                return Result(member, False, "status", text)
        except TimeoutError:
            return Result(member, False, "timeout", f"{stage} within {self.budget:g} s")
        except aiohttp.ClientError as exc:
            return self._error(member, url, exc)
        except OSError as exc:
            return failure(member, exc, _where(url), self.budget, stage)

    async def _read(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while chunk := await response.content.read(64 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > self.cap:
                return b"".join(chunks)[: self.cap], True
        return b"".join(chunks), False

    def _error(self, member: str, url: str, exc: aiohttp.ClientError) -> Result:
        import ssl

        import aiohttp

        from .tls import describe_ssl_error

        where = _where(url)
        inner = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None)
        if isinstance(inner, ssl.SSLError) or isinstance(exc, aiohttp.ClientSSLError):
            name = self.server_name or _origin(url)[1]
            text = describe_ssl_error(inner or exc, name, self.ca) or f"TLS error with {where}"
            return Result(member, False, "TLS", text)
        if isinstance(inner, OSError):
            return failure(member, inner, where, self.budget, "no response")
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            text = f"{where} closed the connection without a response"
            return Result(member, False, "connection", text)
        text = f"request to {where} failed: {type(exc).__name__}: {exc}"
        return Result(member, False, "connection", text)

    def _status(self, member: str, code: int, note: str = "") -> Result:
        want = " or ".join(map(str, self.statuses)) if self.statuses else "2xx"
        text = f"expected {want}, got {code}" + (f" ({note})" if note else "")
        return Result(member, False, "status", text)

    def _judge(
        self, member: str, r: aiohttp.ClientResponse, body: bytes, truncated: bool, ms: float
    ) -> Result:
        from .http import _check_json

        code = r.status
        if (code not in self.statuses) if self.statuses else not 200 <= code < 300:
            return self._status(member, code)
        problems: list[str] = []
        needs_body = "expect_json" in self.spec or "expect_body" in self.spec
        if needs_body and truncated:
            problems.append(f"response body larger than {self.cap} bytes (max_body_bytes)")
        elif "expect_json" in self.spec:
            answer = _Answer(body, r.headers)
            problems += _check_json(cast(Any, answer), self.spec["expect_json"])
        pattern = self.spec.get("expect_body")
        text = body.decode(_codec(r.charset), "replace")
        if needs_body and not truncated and pattern and not re.search(pattern, text):
            problems.append(f"body does not match /{pattern}/")
        if problems:
            return Result(member, False, "body", "; ".join(problems), ms)
        if self.max_ms is not None and ms > self.max_ms:
            return Result(member, False, "latency", f"{ms:.0f} ms > {self.max_ms:g} ms", ms)
        return Result(member, True, "ok", f"{code} in {ms:.0f} ms", ms)
