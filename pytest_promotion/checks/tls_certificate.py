"""A TLS handshake with ``host:port`` and what its certificate says.

:func:`inspect_certificate` connects within a deadline, verifies the chain and the
hostname with the ``ssl`` module against the target's ``ca_bundle`` (or the system store),
and reads the certificate's fields with ``cryptography`` into a :class:`CertificateInfo`;
the expiry that counts is the earliest of the verified chain. :func:`client_context` is the
one ``SSLContext`` per trust setting that every TLS-speaking kind shares.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from ..redact import redact
from . import deadlines
from .base import CheckFailed, Target
from .tcp import connect, format_hostport
from .tls_errors import describe_ssl_error

if TYPE_CHECKING:
    import socket
    import ssl

__all__ = [
    "CertificateInfo",
    "client_context",
    "inspect_certificate",
    "parse_certificate",
    "parse_version",
    "protocol_version",
]

_VERSIONS = {"1.0": "TLSv1", "1": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}


def parse_version(value: str) -> str:
    """``"1.2"``, ``"TLSv1.2"``, ``"tls1.3"`` -> ``"TLSv1.2"``; ValueError otherwise."""
    text = value.strip().lower().removeprefix("tlsv").removeprefix("tls").strip()
    if text not in _VERSIONS:
        raise ValueError(value)
    return "TLSv" + ("1.0" if text == "1" else text)


def protocol_version(label: str) -> ssl.TLSVersion:
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
    if min_version is not None and protocol_version(min_version) < ctx.minimum_version:
        ctx.minimum_version = protocol_version(min_version)  # let the check report what it got
    return ctx


def parse_certificate(
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
        info = parse_certificate(der, host, port, server_name, tls.version(), verify)
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
