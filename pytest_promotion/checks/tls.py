"""``tls`` check: the certificate at ``host:port`` verifies and stays valid long enough.

The handshake and the certificate's fields are :mod:`.tls_certificate`'s; the one-line
description of a TLS failure, which the ``http`` kind uses too, is :mod:`.tls_errors`'s.
This module judges what they found against the check's keys (``min_days_valid``,
``min_version``) and the posture keys of :mod:`.tls_posture`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..redact import redact
from . import fleet, tls_posture
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .tcp import check_hostport, format_hostport, split_hostport

# Re-exported (in __all__): the names other kinds (http, redis, the async fleet engine) and
# ``pytest_promotion.probes`` have always imported from here.
from .tls_certificate import (
    CertificateInfo,
    client_context,
    inspect_certificate,
    parse_certificate,
    parse_version,
    protocol_version,
)
from .tls_errors import describe_ssl_error

__all__ = [
    "KEYS",
    "ROLLBACK",
    "CertificateInfo",
    "client_context",
    "describe_ssl_error",
    "inspect_certificate",
    "parse_version",
    "run",
    "validate",
]

KEYS: dict[str, type | tuple[type, ...]] = {
    "tls": str,
    "min_days_valid": (int, float),
    "min_version": str,
    "server_name": str,
    **tls_posture.KEYS,  # refuse_below, forbid_ciphers, require_forward_secrecy
}
KEYS.update(fleet.KEYS["tls"])  # targets, quorum: a fleet check (fleet.py)
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True

DEFAULT_MIN_DAYS = 14
# the names checks/aio_net.py imports from here
_parse, _tls_version = parse_certificate, protocol_version


def prepare() -> None:
    """Imports a probe pool's threads would otherwise do on first use (see items.start_early)."""
    import ssl  # noqa: F401

    from cryptography import x509  # noqa: F401
    from cryptography.hazmat.primitives import hashes  # noqa: F401


def validate(spec: Mapping[str, Any], where: str) -> None:
    if fleet.wanted(spec):
        return fleet.validate(spec, where, "tls")
    check_hostport(spec, "tls", where)
    days = spec.get("min_days_valid", DEFAULT_MIN_DAYS)
    if isinstance(days, bool) or not isinstance(days, int | float) or days < 0:
        raise CheckConfigError(
            f"{where}: key 'min_days_valid': expected a number >= 0, found {days!r}"
        )
    version = spec.get("min_version", "TLSv1.2")
    try:
        parse_version(version if isinstance(version, str) else "")
    except ValueError:
        raise CheckConfigError(
            f'{where}: key \'min_version\': expected "TLSv1.2" or "TLSv1.3" (or "1.2"), '
            f"found {version!r}"
        ) from None
    name = spec.get("server_name", "x")
    if not isinstance(name, str) or not name or any(c in name for c in " /:@"):
        raise CheckConfigError(f"{where}: key 'server_name': expected a host name, found {name!r}")
    tls_posture.validate(spec, where)


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    if fleet.wanted(spec):
        return fleet.run(spec, target, "tls")
    host, port = split_hostport(spec["tls"])
    name = spec.get("server_name") or host
    min_days = spec.get("min_days_valid", DEFAULT_MIN_DAYS)
    min_version = parse_version(spec.get("min_version", "TLSv1.2"))
    threshold = f">= {min_days:g} days"
    timeout = float(spec.get("timeout", target.timeout))
    deadline = time.monotonic() + timeout  # the posture probes share what is left of it
    try:
        info = inspect_certificate(
            host, port, target, name, timeout=timeout, min_version=min_version
        )
    except CheckFailed as failed:
        failed.threshold, failed.unit = threshold, "days"
        return failed.outcome()
    days = info.days_left
    details: dict[str, Any] = {
        "subject": info.subject,
        "issuer": info.issuer,
        "sans": list(info.sans),
        "not_after": info.not_after.isoformat(),
        "tls_version": info.tls_version,
        "warnings": [],
    }
    failure = None
    got = info.tls_version or "unknown"
    which = f"certificate for {name}"
    if info.expiring:
        which = f"certificate {info.expiring} (in the chain of {name})"
        details["expiring_certificate"] = info.expiring
    if got == "unknown" or protocol_version(got) < protocol_version(min_version):
        failure = f"{format_hostport(host, port)} negotiated {got}, below min_version {min_version}"
    elif days < 0:
        failure = f"{which} expired on {info.not_after:%Y-%m-%d}"
    elif days < min_days:
        failure = f"{which} expires in {_days(days)} (< {min_days:g})"
    message = failure or (
        f"{which} valid for {_days(days)} (until {info.not_after:%Y-%m-%d}), {got}"
    )
    if not info.verified:
        details["warnings"].append("TLS verification disabled (insecure = true)")
        message += "; TLS verification disabled (insecure = true)"
    outcome = Outcome(
        passed=failure is None,
        message=redact(message, target.secrets),
        measured=round(days, 1),
        threshold=threshold,
        unit="days",
        details=details,
    )
    return tls_posture.apply(outcome, spec, (host, port, name), deadline, timeout)


def _days(days: float) -> str:
    if days < 1:
        hours = max(days * 24, 0)
        return f"{hours:.0f} hours"
    n = round(days)
    return f"{n} day" if n == 1 else f"{n} days"
