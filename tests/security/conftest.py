"""Servers for the posture tests: the trustme HTTPS servers of tests/http, with the
protocol versions and cipher suites a test asks for."""

from __future__ import annotations

import ssl
import warnings

import trustme

from tests.http.conftest import Route, Server, Servers
from tests.http.conftest import servers as servers  # the fixture, reused

__all__ = ["Route", "Server", "Servers", "posture_server", "servers"]


def posture_server(
    running: Servers,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    rsa: bool = False,
    routes: dict[str, Route] | None = None,
) -> Server:
    """An HTTPS server on 127.0.0.1 speaking only ``minimum``..``maximum`` with ``ciphers``
    (an OpenSSL string; ``@SECLEVEL=0`` is added so old and weak suites are really offered).
    ``rsa``: an RSA certificate (static RSA key exchange needs one), from the same CA."""
    key = trustme.KeyType.RSA if rsa else trustme.KeyType.ECDSA
    cert = running.ca.issue_cert("localhost", "127.0.0.1", key_type=key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    if ciphers is not None or minimum is not None:
        context.set_ciphers(f"{ciphers or 'DEFAULT'}:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLS 1.0 is deprecated: offering it is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    return running._start(routes, "127.0.0.1", context)
