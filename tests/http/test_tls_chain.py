"""The expiry that counts is the earliest in the verified chain (issue 11, item 8): an
intermediate CA expiring in 3 days passed min_days_valid = 14 as "300 days"."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pytest_promotion.checks import tls
from pytest_promotion.checks.base import Target

from .conftest import Servers, days

pytestmark = pytest.mark.integration

Key = ec.EllipticCurvePrivateKey


def _cert(
    name: str, key: Key, issuer: tuple[str, Key] | None, not_after: dt.datetime, ca: bool
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]) if issuer else subject
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(days(-1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    else:
        sans = [x509.DNSName("localhost")]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.mark.parametrize(
    ("intermediate_days", "leaf_days", "passed", "says"),
    [
        (
            3,
            300,
            False,
            "certificate CN=Promotion Intermediate (in the chain of localhost) expires in 3 days (< 14)",
        ),
        (
            200,
            300,
            True,
            "certificate CN=Promotion Intermediate (in the chain of localhost) valid for 200 days",
        ),
        (400, 30, True, "certificate for localhost valid for 30 days"),
    ],
)
def test_the_earliest_expiry_in_the_verified_chain_counts(
    servers: Servers,
    tmp_path: Path,
    intermediate_days: int,
    leaf_days: int,
    passed: bool,
    says: str,
) -> None:
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = _cert("Promotion Root", keys[0], None, days(3650), ca=True)
    middle = _cert(
        "Promotion Intermediate",
        keys[1],
        ("Promotion Root", keys[0]),
        days(intermediate_days),
        ca=True,
    )
    leaf = _cert(
        "localhost", keys[2], ("Promotion Intermediate", keys[1]), days(leaf_days), ca=False
    )
    (tmp_path / "chain.pem").write_bytes(_pem(leaf, middle))
    (tmp_path / "key.pem").write_bytes(
        keys[2].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "root.pem").write_bytes(_pem(root))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    server = servers._start(None, "127.0.0.1", context)
    target = Target(env="prod", ca_bundle=str(tmp_path / "root.pem"), timeout=2.0)
    out = tls.run({"tls": f"localhost:{server.port}", "min_days_valid": 14}, target)
    assert out.passed is passed, out.message
    assert out.message.startswith(says), out.message
