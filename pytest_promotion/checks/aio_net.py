"""The event-loop engine's ``tcp`` and ``tls`` probes, on asyncio streams.

The same rules as the threaded :mod:`.tcp` and :mod:`.tls` kinds: the whole exchange
(resolution, connect, handshake) within the timeout, TLS verified with the shared client
context (:func:`.tls.client_context`), the same one-line messages. A hanging target holds
a coroutine, not a thread.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from ..redact import redact
from .base import Target
from .tcp import split_hostport
from .tls import _days, _parse, _tls_version, describe_ssl_error

__all__ = ["Result", "TcpProbe", "TlsProbe", "failure", "hostport"]


@dataclass
class Result:
    """One target's outcome. ``reason``: ok, refused, timeout, TLS, status, body, latency,
    dns or connection (anything else that kept the probe from an answer)."""

    target: str
    healthy: bool
    reason: str
    message: str
    latency_ms: float | None = None


def hostport(target: str, default_port: int | None) -> tuple[str, int]:
    """``"10.0.0.7:443"`` / ``"[::1]:443"`` / ``"host"`` (with the default port)."""
    text = target.strip()
    if "://" in text:
        raise ValueError("expected host:port, not a URL")
    bare = text.startswith("[") and text.endswith("]")
    if default_port is not None and (bare or (":" not in text)):
        return text.strip("[]"), default_port
    return split_hostport(text)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def failure(target: str, exc: BaseException, where: str, budget: float, late: str) -> Result:
    """The Result of a connection that failed with ``exc`` (not a TLS error)."""
    if isinstance(exc, TimeoutError):
        return Result(target, False, "timeout", f"{late} within {budget:g} s")
    if isinstance(exc, ConnectionRefusedError):
        return Result(target, False, "refused", f"connection refused by {where}")
    if isinstance(exc, socket.gaierror):
        host = where.rsplit(":", 1)[0].strip("[]")
        return Result(target, False, "dns", f"cannot resolve host {host}: {exc.strerror}")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return Result(target, False, "connection", f"cannot connect to {where}: {reason}")


class TcpProbe:
    """``tcp``: a connection opens within the timeout."""

    def __init__(self, spec: Any, target: Target, default_port: int | None) -> None:
        self.target = target
        self.default_port = default_port
        self.budget = float(spec.get("timeout", target.timeout))

    async def __call__(self, member: str) -> Result:
        try:
            host, port = hostport(member, self.default_port)
        except ValueError as exc:
            return Result(member, False, "connection", f"target {member!r}: {exc}")
        where = _where(host, port)
        start = time.monotonic()
        try:
            async with asyncio.timeout(self.budget):
                _reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            result = failure(member, exc, where, self.budget, f"no connection to {where}")
            result.message = redact(result.message, self.target.secrets)
            return result
        elapsed = round((time.monotonic() - start) * 1000, 1)
        writer.transport.abort()
        if elapsed > self.budget * 1000:  # connected, but after the deadline (a late timer)
            return failure(member, TimeoutError(), where, self.budget, f"no connection to {where}")
        return Result(member, True, "ok", f"connected in {elapsed:.0f} ms", elapsed)


class TlsProbe:
    """``tls``: the certificate verifies and stays valid for ``min_days_valid`` days."""

    def __init__(self, spec: Any, target: Target, default_port: int | None) -> None:
        from .tls import DEFAULT_MIN_DAYS, client_context, parse_version

        self.target = target
        self.default_port = default_port
        self.budget = float(spec.get("timeout", target.timeout))
        self.server_name: str | None = spec.get("server_name")
        self.min_days = float(spec.get("min_days_valid", DEFAULT_MIN_DAYS))
        self.min_version = parse_version(spec.get("min_version", "TLSv1.2"))
        self.verify = not target.insecure
        self.context = client_context(target, self.verify, self.min_version)
        self.plain = client_context(target, False, self.min_version)
        self.ca = str(target.path(target.ca_bundle)) if target.ca_bundle else None

    async def _handshake(
        self, host: str, port: int, name: str, context: ssl.SSLContext, deadline: float
    ) -> tuple[bytes | None, str | None]:
        left = max(deadline - time.monotonic(), 0.001)
        async with asyncio.timeout(left):
            _reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=name, ssl_handshake_timeout=left
            )
        try:
            tls = writer.get_extra_info("ssl_object")
            return tls.getpeercert(binary_form=True), tls.version()
        finally:
            writer.transport.abort()

    async def __call__(self, member: str) -> Result:
        try:
            host, port = hostport(member, self.default_port)
        except ValueError as exc:
            return Result(member, False, "connection", f"target {member!r}: {exc}")
        result = await self._probe(member, host, port)
        result.message = redact(result.message, self.target.secrets)
        return result

    async def _probe(self, member: str, host: str, port: int) -> Result:
        name = self.server_name or host
        where = _where(host, port)
        deadline = time.monotonic() + self.budget
        try:
            der, version = await self._handshake(host, port, name, self.context, deadline)
        except ssl.SSLError as exc:
            cert = None
            if isinstance(exc, ssl.SSLCertVerificationError):
                try:  # a second look without verification, to say what is wrong with it
                    raw, got = await self._handshake(host, port, name, self.plain, deadline)
                    cert = _parse(raw, host, port, name, got, False) if raw else None
                except (OSError, TimeoutError, ValueError):
                    cert = None
            text = describe_ssl_error(exc, name, self.ca, cert) or str(exc)
            return Result(member, False, "TLS", text)
        except (OSError, TimeoutError) as exc:
            return failure(member, exc, where, self.budget, f"no TLS handshake with {where}")
        if time.monotonic() > deadline:  # done, but after the deadline (a late timer)
            late = f"no TLS handshake with {where}"
            return failure(member, TimeoutError(), where, self.budget, late)
        if der is None:
            return Result(member, False, "TLS", f"{where} sent no certificate")
        return self._judge(member, _parse(der, host, port, name, version, self.verify))

    def _judge(self, member: str, info: Any) -> Result:
        """The verdict and the message of the threaded ``tls`` kind."""
        days, name = info.days_left, info.server_name
        got = info.tls_version or "unknown"
        if got == "unknown" or _tls_version(got) < _tls_version(self.min_version):
            where = _where(info.host, info.port)
            text = f"{where} negotiated {got}, below min_version {self.min_version}"
            return Result(member, False, "TLS", text)
        if days < 0:
            text = f"certificate for {name} expired on {info.not_after:%Y-%m-%d}"
            return Result(member, False, "TLS", text)
        if days < self.min_days:
            text = f"certificate for {name} expires in {_days(days)} (< {self.min_days:g})"
            return Result(member, False, "TLS", text)
        text = f"certificate for {name} valid for {_days(days)} (until {info.not_after:%Y-%m-%d}), {got}"
        return Result(member, True, "ok", text)
