"""An HTTPS ``/health`` service on 127.0.0.1, certificate from a CA made on the spot.

``fault`` (or ``$PROMOTION_DEMO_FAULT``) makes it misbehave the way deployed services do,
so that a gate run shows each outcome: see ``FAULTS``."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["FAULTS", "FAULT_VAR", "DemoService", "check_fault"]

FAULT_VAR = "PROMOTION_DEMO_FAULT"
# fault -> what the target does; the gate that catches it is in demo/suite.py.
FAULTS: dict[str, str] = {
    "unhealthy": '/health answers 200 with {"status": "degraded"}',
    "500": "/health answers 500 Internal Server Error",
    "slow": "/health answers after 1.5 s",
    "expiring": "the certificate expires in 3 days",
    "version": "/health reports version 0.0.0-stale, not the promoted one",
}
SLOW_SECONDS = 1.5


def check_fault(fault: str | None) -> str | None:
    """``fault`` if known (None or "" = healthy), else ValueError naming the known ones."""
    if not fault or fault == "none":
        return None
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
    return fault


def _make_certificates(directory: Path, days: float = 90) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) for 127.0.0.1 and localhost."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pytest-promotion demo CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=max(days, 90)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_pem.chmod(0o600)
    return ca_pem, cert_pem, key_pem


class _Handler(BaseHTTPRequestHandler):
    version = "0.0.0"
    fault: str | None = None

    def version_string(self) -> str:
        # No version banner (http.server's "BaseHTTP/0.6 Python/3.11.7"): the
        # response-headers check of promotion.toml forbids `Server: .*\d`.
        return "promotion-demo"

    def end_headers(self) -> None:
        # The headers docs/security-checks.md's ready set expects, on every response.
        self.send_header("Strict-Transport-Security", "max-age=31536000")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/health":
            self.send_error(404)
            return
        if self.fault == "500":
            self.send_error(500)
            return
        if self.fault == "slow":
            time.sleep(SLOW_SECONDS)
        status = "degraded" if self.fault == "unhealthy" else "ok"
        version = "0.0.0-stale" if self.fault == "version" else self.version
        body = json.dumps({"status": status, "version": version}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # keep the gate run's output clean
        return


class DemoService:
    """``DemoService.start()``: serving until ``stop()``; ``url`` and ``ca_bundle`` tell
    a promotion.toml where it is and whom to trust."""

    def __init__(
        self,
        server: ThreadingHTTPServer,
        directory: tempfile.TemporaryDirectory[str],
        ca: Path,
        fault: str | None = None,
    ) -> None:
        self.fault = fault
        self._server = server
        self._directory = directory
        self.ca_bundle = str(ca)
        self.port = int(server.server_address[1])
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever, name="promotion-demo", daemon=True
        )
        self._thread.start()

    @classmethod
    def start(cls, version: str = "0.0.0", fault: str | None = None, port: int = 0) -> DemoService:
        """Serving on 127.0.0.1:``port`` (0: a free one); ``fault`` None = healthy."""
        fault = check_fault(fault)
        directory = tempfile.TemporaryDirectory(prefix="promotion-demo-")
        days = 3 if fault == "expiring" else 90
        ca, cert, key = _make_certificates(Path(directory.name), days=days)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        handler = type("Handler", (_Handler,), {"version": version, "fault": fault})
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            directory.cleanup()
            raise OSError(
                f"demo: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
            ) from None
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        return cls(server, directory, ca, fault)

    def variables(self) -> dict[str, str]:
        """What a promotion.toml reads to find it: PROMOTION_DEMO_URL, _CA, _HOSTPORT."""
        return {
            "PROMOTION_DEMO_URL": self.url,
            "PROMOTION_DEMO_CA": self.ca_bundle,
            "PROMOTION_DEMO_HOSTPORT": f"127.0.0.1:{self.port}",
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._directory.cleanup()
