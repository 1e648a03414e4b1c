from __future__ import annotations

import datetime as dt
import ssl
import time
from typing import Any

import pytest

from pytest_promotion.checks import tls
from pytest_promotion.checks.base import CheckConfigError, CheckFailed, Outcome, Target
from tests.support import free_port

from .conftest import Server, Servers, days

pytestmark = pytest.mark.integration


def run(servers: Servers, server: Server | int, **spec: Any) -> Outcome:
    port = server if isinstance(server, int) else server.port
    insecure = spec.pop("insecure", False)
    t = Target(env="prod", ca_bundle=str(servers.ca_file), timeout=1.0, insecure=insecure)
    return tls.run({"tls": f"localhost:{port}", **spec}, t)


def test_valid_certificate(servers: Servers) -> None:
    server = servers.https(not_after=days(90))
    out = run(servers, server)
    assert out.passed, out.message
    expiry = f"{days(90):%Y-%m-%d}"
    assert out.message == f"certificate for localhost valid for 90 days (until {expiry}), TLSv1.3"
    assert out.measured == pytest.approx(90, abs=0.1)
    assert (out.threshold, out.unit) == (">= 14 days", "days")
    assert out.details["sans"] == ["localhost", "127.0.0.1"]


def test_expiring_soon(servers: Servers) -> None:
    server = servers.https(not_after=days(3))
    out = run(servers, server)
    assert (out.passed, out.message) == (
        False,
        "certificate for localhost expires in 3 days (< 14)",
    )
    assert out.measured == pytest.approx(3.0, abs=0.1)
    assert out.threshold == ">= 14 days"
    assert run(servers, server, min_days_valid=2).passed


def test_expired(servers: Servers) -> None:
    server = servers.https(not_before=days(-30), not_after=days(-2))
    out = run(servers, server)
    assert not out.passed
    assert out.message == f"certificate for localhost expired on {days(-2):%Y-%m-%d} (2 days ago)"
    assert out.measured == pytest.approx(-2.0, abs=0.1)
    assert out.threshold == ">= 14 days"


def test_hostname_mismatch(servers: Servers) -> None:
    server = servers.https(None, "wrong.example")
    out = run(servers, server)
    assert (out.passed, out.message) == (
        False,
        "certificate does not match hostname localhost (it is for wrong.example)",
    )
    # the name to verify can be given: connect to localhost, verify wrong.example
    assert run(servers, server, server_name="wrong.example").passed


def test_unknown_ca(servers: Servers) -> None:
    server = servers.https(ca=servers.other_ca)
    out = run(servers, server)
    assert not out.passed
    assert out.message.startswith("certificate for localhost is issued by an unknown CA (")
    assert out.message.endswith(f"), not in ca_bundle {servers.ca_file}")


def test_insecure_still_checks_expiry_and_says_so(servers: Servers) -> None:
    server = servers.https(ca=servers.other_ca, not_after=days(3))
    out = run(servers, server, insecure=True)
    assert not out.passed
    assert out.message == (
        "certificate for localhost expires in 3 days (< 14); "
        "TLS verification disabled (insecure = true)"
    )
    assert out.details["warnings"] == ["TLS verification disabled (insecure = true)"]


def test_protocol_too_old(servers: Servers) -> None:
    server = servers.https(max_version=ssl.TLSVersion.TLSv1_2)
    out = run(servers, server, min_version="TLSv1.3")
    assert (out.passed, out.message) == (
        False,
        f"localhost:{server.port} negotiated TLSv1.2, below min_version TLSv1.3",
    )
    assert run(servers, server, min_version="1.2").passed


def test_refused_and_silent(servers: Servers) -> None:
    port = free_port()
    out = run(servers, port)
    assert (out.passed, out.message) == (False, f"connection refused by localhost:{port}")
    silent = servers.silent()
    out = run(servers, silent, timeout=0.3)
    assert (out.passed, out.message) == (
        False,
        f"no TLS handshake with localhost:{silent} within 0.3 s",
    )


def test_inspect_certificate(servers: Servers) -> None:
    server = servers.https(None, "localhost", "api.internal", not_after=days(30))
    t = Target(env="prod", ca_bundle=str(servers.ca_file), timeout=1.0)
    info = tls.inspect_certificate("127.0.0.1", server.port, t, server_name="api.internal")
    assert info.verified and info.sans == ("localhost", "api.internal")
    assert info.not_after.tzinfo is dt.UTC and 29.9 < info.days_left <= 30
    assert "trustme" in info.issuer and info.tls_version == "TLSv1.3"
    with pytest.raises(CheckFailed, match=r"^certificate does not match hostname 127\.0\.0\.1"):
        tls.inspect_certificate("127.0.0.1", server.port, t)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"tls": "localhost"},
            "W: key 'tls': expected \"host:port\", found 'localhost' (expected host:port)",
        ),
        (
            {"tls": "h:99999"},
            "W: key 'tls': expected \"host:port\", found 'h:99999' "
            "(the port must be 1-65535, not '99999')",
        ),
        (
            {"tls": "h:443", "min_days_valid": -1},
            "W: key 'min_days_valid': expected a number >= 0, found -1",
        ),
        (
            {"tls": "h:443", "min_version": "SSLv3"},
            'W: key \'min_version\': expected "TLSv1.2" or "TLSv1.3" (or "1.2"), found \'SSLv3\'',
        ),
        (
            {"tls": "h:443", "server_name": "a b"},
            "W: key 'server_name': expected a host name, found 'a b'",
        ),
    ],
)
def test_validate(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        tls.validate(spec, "W")
    assert str(info.value) == message


def test_parse_version() -> None:
    assert [tls.parse_version(v) for v in ("1.2", "TLSv1.3", "tls1.2")] == [
        "TLSv1.2",
        "TLSv1.3",
        "TLSv1.2",
    ]
    tls.validate({"tls": "[::1]:443", "min_version": "1.3"}, "W")


def test_missing_ca_bundle(servers: Servers, tmp_path: Any) -> None:
    server = servers.https()
    t = Target(env="prod", ca_bundle=str(tmp_path / "nope.pem"), timeout=1.0)
    out = tls.run({"tls": f"localhost:{server.port}"}, t)
    assert (out.passed, out.message) == (False, f"ca_bundle {tmp_path / 'nope.pem'} does not exist")


def test_handshake_trickling_bytes_fails_at_the_deadline(servers: Servers) -> None:
    port = servers.trickler()
    start = time.monotonic()
    out = run(servers, port, timeout=0.5)
    assert (out.passed, out.message) == (
        False,
        f"no TLS handshake with localhost:{port} within 0.5 s",
    )
    assert time.monotonic() - start < 1.5


def test_an_insecure_handshake_never_lends_its_trust_to_a_verified_one(
    servers: Servers,
) -> None:
    server = servers.https(ca=servers.other_ca, not_after=days(90))
    assert run(servers, server, insecure=True).passed
    assert "issued by an unknown CA" in run(servers, server).message


def test_a_rotated_ca_bundle_is_read_again(servers: Servers) -> None:
    server = servers.https(ca=servers.other_ca, not_after=days(90))
    assert not run(servers, server).passed
    servers.other_ca.cert_pem.write_to_path(str(servers.ca_file))
    assert run(servers, server).passed
