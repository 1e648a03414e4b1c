"""``tls`` check: the certificate at ``host:port`` verifies and stays valid long enough.

The chain and the hostname are verified with the ``ssl`` module against the target's
``ca_bundle`` (or the system store); the certificate fields are read with
``cryptography``. :func:`describe_ssl_error` turns an ``ssl`` error into the one-line
message the ``http`` kind uses too.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..redact import redact
from . import deadlines, fleet, tls_posture
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .tcp import check_hostport, connect, format_hostport, split_hostport

if TYPE_CHECKING:
    import socket
    import ssl

__all__ = [
    "KEYS",
    "ROLLBACK",
    "CertificateInfo",
    "client_context",
    "describe_ssl_error",
    "inspect_certificate",
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
_VERSIONS = {"1.0": "TLSv1", "1": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}
_EXPIRED, _NOT_YET_VALID = 10, 9
_HOSTNAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_SELF_SIGNED = 18  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
_UNKNOWN_CA = (2, 19, 20, 21)  # unable to get issuer, self-signed in chain, ...
_PROTOCOL = ("UNSUPPORTED_PROTOCOL", "PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE")


def prepare() -> None:
    """Imports a probe pool's threads would otherwise do on first use (see items.start_early)."""
    import ssl  # noqa: F401

    from cryptography import x509  # noqa: F401
    from cryptography.hazmat.primitives import hashes  # noqa: F401


def parse_version(value: str) -> str:
    """``"1.2"``, ``"TLSv1.2"``, ``"tls1.3"`` -> ``"TLSv1.2"``; ValueError otherwise."""
    text = value.strip().lower().removeprefix("tlsv").removeprefix("tls").strip()
    if text not in _VERSIONS:
        raise ValueError(value)
    return "TLSv" + ("1.0" if text == "1" else text)


def _tls_version(label: str) -> ssl.TLSVersion:
    import ssl

    return getattr(ssl.TLSVersion, _VERSIONS[label.removeprefix("TLSv")])  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CertificateInfo:
    """What a gate wants to know about a server's certificate."""

    host: str
    port: int
    server_name: str
    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    serial: int
    fingerprint_sha256: str
    tls_version: str | None
    verified: bool
    # The certificate whose expiry counts when it is not the leaf: an intermediate of the
    # verified chain that expires first (``not_after`` is then its expiry).
    expiring: str | None = None

    @property
    def days_left(self) -> float:
        return (self.not_after - datetime.now(UTC)).total_seconds() / 86400


def _walk(exc: BaseException | None) -> Iterator[BaseException]:
    """An exception and everything it wraps (args, reason, cause, context)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack.extend(a for a in e.args if isinstance(a, BaseException))
        reason = getattr(e, "reason", None)
        stack.extend([reason] if isinstance(reason, BaseException) else [])
        stack.extend([e.__cause__, e.__context__])


def describe_ssl_error(
    exc: BaseException, server_name: str, ca_bundle: str | None, cert: CertificateInfo | None = None
) -> str | None:
    """One line for the TLS failure inside ``exc``, or None if there is none."""
    import ssl

    store = f"ca_bundle {ca_bundle}" if ca_bundle else "the system trust store"
    for e in _walk(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            code = e.verify_code
            if code == _EXPIRED:
                when = ""
                if cert is not None:
                    when = f" on {cert.not_after:%Y-%m-%d} ({-cert.days_left:.0f} days ago)"
                return f"certificate for {server_name} expired{when}"
            if code == _NOT_YET_VALID:
                when = f" before {cert.not_before:%Y-%m-%d %H:%M} UTC" if cert else " yet"
                return f"certificate for {server_name} is not valid{when}"
            if code in _HOSTNAME_MISMATCH:
                names = f" (it is for {', '.join(cert.sans) or cert.subject})" if cert else ""
                return f"certificate does not match hostname {server_name}{names}"
            if code == _SELF_SIGNED:
                return f"certificate for {server_name} is self-signed and not in {store}"
            if code in _UNKNOWN_CA:
                issuer = f" ({cert.issuer})" if cert else ""
                return (
                    f"certificate for {server_name} is issued by an unknown CA{issuer}, "
                    f"not in {store}"
                )
            return f"certificate for {server_name} failed verification: {e.verify_message}"
        if isinstance(e, ssl.SSLError):
            reason = str(getattr(e, "reason", None) or "")
            if any(p in reason for p in _PROTOCOL):
                return f"TLS protocol version rejected by {server_name} ({reason.lower()})"
            if reason == "WRONG_VERSION_NUMBER" or "wrong version number" in str(e):
                return f"{server_name} did not answer with TLS (plain HTTP on a TLS port?)"
            if isinstance(e, ssl.SSLEOFError) or "EOF" in reason:
                return f"connection closed during the TLS handshake with {server_name}"
            return f"TLS handshake with {server_name} failed: {reason.lower() or e}"
    return None


def _ca_file(target: Target) -> str | None:
    return str(target.path(target.ca_bundle)) if target.ca_bundle else None


def client_context(target: Target, verify: bool, min_version: str | None = None) -> ssl.SSLContext:
    """One context per trust setting, shared by every handshake: loading the system store
    costs ~90 ms of CPU here, which 200 concurrent checks would queue behind under the GIL.
    A CA bundle rewritten on disk is loaded again."""
    cafile = _ca_file(target) if verify else None
    try:
        info = os.stat(cafile) if cafile else None
    except OSError:
        info = None  # not cached: building the context raises what it always did
    stamp = (info.st_mtime_ns, info.st_size) if info else None
    return _shared_context(cafile, stamp, verify, min_version)


@lru_cache(maxsize=32)
def _shared_context(
    cafile: str | None, stamp: tuple[int, int] | None, verify: bool, min_version: str | None
) -> ssl.SSLContext:
    import ssl

    ctx = ssl.create_default_context(cafile=cafile)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if min_version is not None and _tls_version(min_version) < ctx.minimum_version:
        ctx.minimum_version = _tls_version(min_version)  # let the check report what it got
    return ctx


def _parse(
    der: bytes, host: str, port: int, server_name: str, version: str | None, verified: bool
) -> CertificateInfo:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_der_x509_certificate(der)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(
            [*ext.get_values_for_type(x509.DNSName)]
            + [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        sans = ()
    return CertificateInfo(
        host=host,
        port=port,
        server_name=server_name,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=sans,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        tls_version=version,
        verified=verified,
    )


def _handshake(
    host: str,
    port: int,
    target: Target,
    server_name: str,
    verify: bool,
    min_version: str | None,
    deadline: float,
    budget: float,
) -> CertificateInfo:
    sock = connect(host, port, deadline, budget=budget)
    late = f"no TLS handshake with {format_hostport(host, port)} within {budget:g} s"
    tls = client_context(target, verify, min_version).wrap_socket(
        sock, server_hostname=server_name, do_handshake_on_connect=False
    )
    # the socket timeout bounds each read; this bounds the whole handshake
    dog = deadlines.schedule(deadline, functools.partial(_shutdown, tls))
    try:
        tls.do_handshake()
        der = tls.getpeercert(binary_form=True)
        if der is None:
            raise CheckFailed(f"{format_hostport(host, port)} sent no certificate")
        info = _parse(der, host, port, server_name, tls.version(), verify)
        return _earliest_in_chain(info, _verified_chain(tls)) if verify else info
    except TimeoutError:
        raise CheckFailed(late) from None
    except OSError:
        if time.monotonic() >= deadline:
            raise CheckFailed(late) from None
        raise
    finally:
        deadlines.cancel(dog)
        tls.close()
        sock.close()


def _verified_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """The verified chain (leaf first, DER): ``get_verified_chain()`` from Python 3.13,
    the same method of the ``_ssl`` object before it ([] when neither exists)."""
    public = getattr(tls, "get_verified_chain", None)
    if public is not None:
        return [bytes(c) for c in public()]
    getter = getattr(getattr(tls, "_sslobj", None), "get_verified_chain", None)
    if getter is None:
        return []
    import _ssl

    return [c.public_bytes(_ssl.ENCODING_DER) for c in getter() or ()]


def _earliest_in_chain(info: CertificateInfo, chain: list[bytes]) -> CertificateInfo:
    """``info`` with the earliest expiry of the verified chain: an intermediate CA that
    expires in 3 days ends the service as surely as the leaf would."""
    from cryptography import x509

    earliest, subject = info.not_after, None
    for der in chain[1:]:
        cert = x509.load_der_x509_certificate(der)
        if cert.not_valid_after_utc < earliest:
            earliest, subject = cert.not_valid_after_utc, cert.subject.rfc4514_string()
    if subject is None:
        return info
    return dataclasses.replace(info, not_after=earliest, expiring=subject)


def _shutdown(sock: socket.socket) -> None:
    import socket

    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def inspect_certificate(
    host: str,
    port: int,
    target: Target,
    server_name: str | None = None,
    *,
    timeout: float | None = None,
    min_version: str | None = None,
) -> CertificateInfo:
    """Handshake with ``host:port`` (verifying unless ``target.insecure``) and read the cert.

    Raises :class:`CheckFailed` (one line, redacted) when the connection or the
    verification fails; the message says why (expired, hostname, unknown CA, protocol).
    """
    import ssl

    name = server_name or host
    ca = _ca_file(target)
    if ca and not target.insecure and not target.path(ca).is_file():
        raise CheckFailed(f"ca_bundle {ca} does not exist")
    budget = target.timeout if timeout is None else timeout
    deadline = time.monotonic() + budget
    verify = not target.insecure
    try:
        return _handshake(host, port, target, name, verify, min_version, deadline, budget)
    except ssl.SSLError as exc:
        cert = None
        if isinstance(exc, ssl.SSLCertVerificationError):
            try:  # a second look without verification, to say what is wrong with it
                cert = _handshake(host, port, target, name, False, min_version, deadline, budget)
            except (CheckFailed, OSError):
                cert = None
        message = describe_ssl_error(exc, name, _ca_file(target), cert) or str(exc)
        days = round(cert.days_left, 1) if cert else None
        raise CheckFailed(redact(message, target.secrets), measured=days) from None
    except OSError as exc:
        raise CheckFailed(
            redact(f"TLS connection to {format_hostport(host, port)} failed: {exc}", target.secrets)
        ) from None


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
    if got == "unknown" or _tls_version(got) < _tls_version(min_version):
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
