"""``tcp`` check: a TCP connection to ``host:port`` opens within the timeout.

Also the connection helpers the ``tls`` and ``http`` kinds share: ``host:port`` parsing
and a connect whose name resolution is bounded by the same deadline as the connect.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from typing import Any

from ..redact import redact
from . import deadlines, fleet
from .base import CheckConfigError, CheckFailed, Outcome, Target

__all__ = ["KEYS", "ROLLBACK", "connect", "format_hostport", "run", "split_hostport", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {"tcp": str}
KEYS.update(fleet.KEYS["tcp"])  # targets, quorum: a fleet check (fleet.py)
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True


def split_hostport(value: str) -> tuple[str, int]:
    """``"db:5432"`` -> ``("db", 5432)``; ``"[::1]:443"`` -> ``("::1", 443)``.

    Raises ValueError with a short reason.
    """
    value = value.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError("expected [ipv6]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError("expected host:port")
        if ":" in host:
            raise ValueError("an IPv6 address needs brackets: [::1]:443")
    if not host:
        raise ValueError("the host is empty")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"the port must be 1-65535, not {port_text!r}")
    return host, int(port_text)


def format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_hostport(spec: Mapping[str, Any], key: str, where: str) -> tuple[str, int]:
    """The ``host:port`` under ``key``, or a CheckConfigError naming ``where``."""
    value = spec.get(key)
    if not isinstance(value, str):
        raise CheckConfigError(
            f'{where}: key {key!r}: expected "host:port", found {type(value).__name__}'
        )
    try:
        return split_hostport(value)
    except ValueError as exc:
        raise CheckConfigError(
            f'{where}: key {key!r}: expected "host:port", found {value!r} ({exc})'
        ) from None


def _seconds(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _resolve(host: str, port: int, deadline: float, budget: float) -> list[Any]:
    """getaddrinfo, bounded by the deadline (the C call itself cannot be interrupted)."""
    try:
        return deadlines.run_within(
            lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM),
            deadline,
            f"resolve {host}",
        )
    except TimeoutError:
        raise CheckFailed(f"cannot resolve {host} within {budget:g} s") from None
    except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CheckFailed(f"cannot resolve host {host}: {reason}") from None


def connect(host: str, port: int, deadline: float, *, budget: float | None = None) -> socket.socket:
    """A connected socket (timeout set to what is left), or CheckFailed with one line.

    ``budget`` is the timeout as the user configured it, for the message.
    """
    budget = round(deadline - time.monotonic(), 3) if budget is None else budget
    where = format_hostport(host, port)
    last: OSError | None = None
    for family, kind, proto, _name, address in _resolve(host, port, deadline, budget):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_seconds(deadline))
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last = exc
            if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                raise CheckFailed(f"no connection to {where} within {budget:g} s") from None
            continue
        sock.settimeout(_seconds(deadline))
        return sock
    if isinstance(last, ConnectionRefusedError):
        raise CheckFailed(f"connection refused by {where}")
    reason = (last.strerror or str(last)) if last else "no address"
    raise CheckFailed(f"cannot connect to {where}: {reason}")


def validate(spec: Mapping[str, Any], where: str) -> None:
    if fleet.wanted(spec):
        return fleet.validate(spec, where, "tcp")
    check_hostport(spec, "tcp", where)


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    if fleet.wanted(spec):
        return fleet.run(spec, target, "tcp")
    host, port = split_hostport(spec["tcp"])
    timeout = float(spec.get("timeout", target.timeout))
    threshold = f"<= {timeout * 1000:.0f} ms"
    start = time.monotonic()
    try:
        sock = connect(host, port, start + timeout, budget=timeout)
    except CheckFailed as failed:
        failed.threshold = threshold
        outcome = failed.outcome()
        outcome.message = redact(outcome.message, target.secrets)
        return outcome
    elapsed_ms = (time.monotonic() - start) * 1000
    peer = sock.getpeername()
    sock.close()
    return Outcome(
        passed=True,
        message=redact(
            f"connected to {format_hostport(host, port)} in {elapsed_ms:.0f} ms", target.secrets
        ),
        measured=round(elapsed_ms, 1),
        threshold=threshold,
        unit="ms",
        details={"address": str(peer[0]), "port": port},
    )
