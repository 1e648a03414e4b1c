"""TLS posture against real servers on loopback: old protocols, weak and non-forward-secret
cipher suites must be refused; what the local library cannot offer is said, not passed."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_promotion.checks import tls, tls_posture
from pytest_promotion.checks.base import CheckConfigError, Outcome, Target
from tests.support import IN_CI, child_environ

from .conftest import Server, Servers, posture_server

pytestmark = pytest.mark.integration

with warnings.catch_warnings():  # TLS 1.0 is deprecated: that is what the test is about
    warnings.simplefilter("ignore", DeprecationWarning)
    TLS1_0 = ssl.TLSVersion.TLSv1


def run(servers: Servers, server: Server, **spec: Any) -> Outcome:
    t = Target(env="prod", ca_bundle=str(servers.ca_file), timeout=3.0)
    return tls.run({"tls": f"localhost:{server.port}", **spec}, t)


def test_server_accepting_tls12_is_refused_by_refuse_below_13(servers: Servers) -> None:
    server = servers.https()  # Python's server default: TLS 1.2 and 1.3
    out = run(servers, server, refuse_below="1.3")
    assert not out.passed
    assert out.message.startswith(f"localhost:{server.port} accepted TLS 1.2 (")
    assert out.message.endswith("), expected it refused (refuse_below 1.3)")
    assert out.rollback is False  # posture blocks; it is not an outage
    assert out.threshold == ">= 14 days, refuse < TLS 1.3"
    assert str(out.measured).startswith("TLSv1.3 TLS_")

    ok = run(servers, server, refuse_below="1.2")
    assert ok.passed, ok.message
    assert "refuses TLS 1.0, TLS 1.1" in ok.message
    assert str(ok.measured).startswith("TLSv1.3 TLS_") and str(ok.measured).endswith(" days")


def test_server_accepting_tls10_fails_refuse_below_12(servers: Servers) -> None:
    server = posture_server(servers, minimum=TLS1_0)
    out = run(servers, server, refuse_below="1.2")
    assert not out.passed
    assert f"localhost:{server.port} accepted TLS 1.0 (" in out.message
    assert f"localhost:{server.port} accepted TLS 1.1 (" in out.message


def test_server_accepting_only_tls13_passes_refuse_below_13(servers: Servers) -> None:
    server = posture_server(servers, minimum=ssl.TLSVersion.TLSv1_3)
    out = run(servers, server, refuse_below="1.3", require_forward_secrecy=True)
    assert out.passed, out.message
    assert "refuses TLS 1.0, TLS 1.1, TLS 1.2" in out.message
    assert "forward secrecy" in out.message


def test_weak_cipher_is_refused_or_named(servers: Servers) -> None:
    if not tls_posture._offerable("NULL"):
        # only a library that cannot offer the suite excuses the test, in CI too
        pytest.skip("the local OpenSSL cannot offer NULL cipher suites")
    weak = posture_server(
        servers, maximum=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-NULL-SHA:ECDHE+AESGCM"
    )
    out = run(servers, weak, forbid_ciphers=["RC4", "NULL"])
    assert not out.passed
    assert out.message.startswith(
        f"localhost:{weak.port} accepted forbidden cipher ECDHE-ECDSA-NULL-SHA (TLSv1.2), "
        "expected none of RC4, NULL"
    )
    assert out.rollback is False

    strong = servers.https()
    ok = run(servers, strong, forbid_ciphers=["NULL", "aNULL"])
    assert ok.passed, ok.message
    assert "refuses cipher suites NULL, aNULL" in ok.message


def test_a_cipher_the_library_cannot_offer_is_a_warning(servers: Servers) -> None:
    if tls_posture._offerable("RC4"):
        if IN_CI:
            pytest.fail("this OpenSSL offers RC4: the warning path needs one that does not")
        pytest.skip("the local OpenSSL still offers RC4")
    out = run(servers, servers.https(), forbid_ciphers=["RC4", "NULL"])
    assert out.passed, out.message
    assert "cipher RC4 not tested: the local library cannot offer it" in out.message
    assert out.details["warnings"] == ["cipher RC4 not tested: the local library cannot offer it"]


def test_forward_secrecy(servers: Servers) -> None:
    static_rsa = posture_server(
        servers, maximum=ssl.TLSVersion.TLSv1_2, ciphers="AES128-GCM-SHA256", rsa=True
    )
    out = run(servers, static_rsa, require_forward_secrecy=True)
    # a modern client offers forward-secret suites only: no handshake at all
    assert (out.passed, out.message) == (
        False,
        "TLS handshake with localhost failed: sslv3_alert_handshake_failure",
    )
    mixed = posture_server(
        servers, maximum=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE+AESGCM:AES128-GCM-SHA256", rsa=True
    )
    out = run(servers, mixed, require_forward_secrecy=True)
    assert not out.passed
    assert out.message == (
        f"localhost:{mixed.port} accepted AES128-GCM-SHA256 (TLSv1.2) without "
        "forward secrecy (require_forward_secrecy)"
    )
    assert str(out.measured).startswith("TLSv1.2 ECDHE-RSA-AES")


def test_probes_share_the_deadline(servers: Servers) -> None:
    silent = servers.silent()
    t = Target(env="prod", ca_bundle=str(servers.ca_file), timeout=0.3)
    out = tls.run({"tls": f"localhost:{silent}", "refuse_below": "1.2"}, t)
    assert (out.passed, out.message) == (
        False,
        f"no TLS handshake with localhost:{silent} within 0.3 s",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"refuse_below": "1.0"},
            'W: key \'refuse_below\': expected "1.1", "1.2" or "1.3", found \'1.0\'',
        ),
        (
            {"refuse_below": "SSLv3"},
            'W: key \'refuse_below\': expected "1.1", "1.2" or "1.3", found \'SSLv3\'',
        ),
        (
            {"forbid_ciphers": []},
            "W: key 'forbid_ciphers': expected a list of OpenSSL cipher names or patterns "
            'such as ["RC4", "3DES", "NULL"], found []',
        ),
        (
            {"forbid_ciphers": ["RC4 MD5"]},
            "W: key 'forbid_ciphers': expected a list of OpenSSL cipher names or patterns "
            'such as ["RC4", "3DES", "NULL"], found [\'RC4 MD5\']',
        ),
    ],
)
def test_validate(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        tls.validate({"tls": "h:443", **spec}, "W")
    assert str(info.value) == message


NO_OLD_TLS = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Protocol = -TLSv1, -TLSv1.1
"""

PROBE = """\
import json, sys
from pathlib import Path
from pytest_promotion.checks import tls
from pytest_promotion.checks.base import Target
from tests.http.conftest import Servers

servers = Servers(Path(sys.argv[1]))
server = servers.https()
target = Target(env="prod", ca_bundle=str(servers.ca_file), timeout=3.0)
out = tls.run({"tls": f"localhost:{server.port}", "refuse_below": "1.2"}, target)
print(json.dumps([out.passed, out.message, out.measured, out.details["warnings"]]))
servers.close()
"""


def test_versions_the_library_cannot_offer_are_warnings(tmp_path: Path) -> None:
    # A real OpenSSL configured (as some distributions ship it) never to speak TLS 1.0/1.1:
    # the check cannot tell whether the server refuses them, and says so.
    (tmp_path / "openssl.cnf").write_text(NO_OLD_TLS)
    env = child_environ(OPENSSL_CONF=str(tmp_path / "openssl.cnf"))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        cwd=Path(__file__).parent.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    passed, message, measured, warnings_ = json.loads(proc.stdout)
    untested = "refuse_below 1.2 untested (the local library offers no older version)"
    assert passed, message
    assert warnings_ == [
        "TLS 1.0 not tested: the local library cannot offer it",
        "TLS 1.1 not tested: the local library cannot offer it",
        untested,
    ]
    assert "; TLS 1.0 not tested: the local library cannot offer it;" in message
    assert measured.startswith("TLSv1.3 TLS_") and measured.endswith(f" days; {untested}")
