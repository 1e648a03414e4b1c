"""Why a TLS connection failed, in one line: expired, not yet valid, wrong hostname,
self-signed, unknown CA, protocol version, plain HTTP on a TLS port, closed mid-handshake.

Shared by the kinds that read a TLS failure (``tls``, ``http``, the async fleet
engine): the same failure reads the same wherever it happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    from .tls_certificate import CertificateInfo

__all__ = ["describe_ssl_error", "walk"]

_EXPIRED, _NOT_YET_VALID = 10, 9
_HOSTNAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_SELF_SIGNED = 18  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
_UNKNOWN_CA = (2, 19, 20, 21)  # unable to get issuer, self-signed in chain, ...
_PROTOCOL = ("UNSUPPORTED_PROTOCOL", "PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE")


def walk(exc: BaseException | None) -> Iterator[BaseException]:
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
    for e in walk(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return _describe_verification(e, server_name, store, cert)
        if isinstance(e, ssl.SSLError):
            return _describe_handshake(e, server_name)
    return None


def _describe_verification(
    e: ssl.SSLCertVerificationError, server_name: str, store: str, cert: CertificateInfo | None
) -> str:
    """The certificate was refused: why, with what the certificate says when it is known."""
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
        return f"certificate for {server_name} is issued by an unknown CA{issuer}, not in {store}"
    return f"certificate for {server_name} failed verification: {e.verify_message}"


def _describe_handshake(e: ssl.SSLError, server_name: str) -> str:
    """The handshake failed before or beside verification: protocol, plain HTTP, EOF."""
    import ssl

    reason = str(getattr(e, "reason", None) or "")
    if any(p in reason for p in _PROTOCOL):
        return f"TLS protocol version rejected by {server_name} ({reason.lower()})"
    if reason == "WRONG_VERSION_NUMBER" or "wrong version number" in str(e):
        return f"{server_name} did not answer with TLS (plain HTTP on a TLS port?)"
    if isinstance(e, ssl.SSLEOFError) or "EOF" in reason:
        return f"connection closed during the TLS handshake with {server_name}"
    return f"TLS handshake with {server_name} failed: {reason.lower() or e}"
