"""The event-loop engine keeps the threaded kinds' rules: the same servers as tests/http,
each case run through the threaded check (one target) and through a fleet of that one
target (on uvloop's event loop and on asyncio's); the verdict and the one-line message
must be the same."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from pytest_promotion.checks import http, tcp, tls
from pytest_promotion.checks.base import Outcome, Target
from tests.http.conftest import Servers, days
from tests.support import free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("loop_kind")]

TIMEOUT = 1.0


def both_http(servers: Servers, url: str, path: str, **spec: Any) -> tuple[Outcome, Any]:
    insecure = spec.pop("insecure", False)
    secrets = spec.pop("secrets", ())
    target = Target(
        env="prod",
        base_url=url,
        ca_bundle=str(servers.ca_file),
        timeout=TIMEOUT,
        insecure=insecure,
        secrets=secrets,
    )
    single = http.run({"http": path, **spec}, target)
    fleet = http.run({"http": path, "targets": [url], **spec}, target)
    return single, fleet.details["targets"][0]


def same(single: Outcome, one: dict[str, Any]) -> None:
    assert one["healthy"] == single.passed, (single.message, one["message"])
    if single.passed:
        assert re.fullmatch(r"\d{3} in \d+ ms", one["message"]), one["message"]
    elif " ms > " in single.message:  # a latency: both over the limit, each its own figure
        assert re.fullmatch(r"\d+ ms > 1 ms", one["message"]), one["message"]
    else:
        assert one["message"] == single.message


HTTP_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("healthy", "/health", {"expect_json": {"status": "ok", "checks.db": "ok", "items.0.n": 1}}),
    ("json mismatch", "/down", {"expect_json": {"status": "ok", "checks": {"db": "ok"}}}),
    ("missing key", "/health", {"expect_json": {"nope": 1}}),
    ("not json", "/html", {"expect_json": {"status": "ok"}}),
    ("body regex", "/html", {"expect_body": "goodbye"}),
    ("503", "/unavailable", {}),
    ("503 expected", "/unavailable", {"expect_status": 503}),
    ("404 listed", "/nowhere", {"expect_status": [200, 204]}),
    ("trickle", "/trickle", {}),
    ("body cap", "/endless", {"expect_json": {"a": 1}, "max_body_bytes": 1000}),
    ("same-origin redirect", "/redirect-same", {"expect_json": {"status": "ok"}}),
    ("redirect loop", "/loop", {}),
    ("latency", "/slow", {"max_latency_ms": 1}),
    ("HEAD", "/health", {"method": "HEAD"}),
    ("masked", "/echo-auth", {"headers": {"Authorization": "Bearer s3cr3t-t0ken-value"}}),
]


@pytest.mark.parametrize(
    ("path", "spec"), [c[1:] for c in HTTP_CASES], ids=[c[0] for c in HTTP_CASES]
)
def test_http_rules(servers: Servers, path: str, spec: dict[str, Any]) -> None:
    server = servers.https()
    single, one = both_http(servers, server.url, path, **spec)
    same(single, one)


def test_http_redirect_to_another_host_is_not_followed(servers: Servers) -> None:
    other = servers.http()
    server = servers.https({"/away": lambda h: h.redirect(other.url + "/health")})
    single, one = both_http(servers, server.url, "/away")
    same(single, one)
    assert "not followed (another scheme)" in one["message"]


CertCase = Callable[[Servers], str]
TLS_SERVERS: dict[str, CertCase] = {
    "unknown CA": lambda s: s.https(ca=s.other_ca).url,
    "expired": lambda s: s.https(not_before=days(-30), not_after=days(-1)).url,
    "wrong host": lambda s: s.https(None, "elsewhere.test").url,
    "plain http on the port": lambda s: s.http().url.replace("http://", "https://"),
    "refused": lambda s: f"https://127.0.0.1:{free_port()}",
    "silent": lambda s: f"https://127.0.0.1:{s.silent()}",
}


@pytest.mark.parametrize("case", list(TLS_SERVERS))
def test_http_connection_and_tls_failures(servers: Servers, case: str) -> None:
    url = TLS_SERVERS[case](servers)
    single, one = both_http(servers, url, "/health")
    same(single, one)


def test_http_insecure_passes_like_the_threaded_kind(servers: Servers) -> None:
    server = servers.https(ca=servers.other_ca)
    single, one = both_http(servers, server.url, "/health", insecure=True)
    assert single.passed and one["healthy"]


@pytest.mark.parametrize(
    ("case", "spec"),
    [
        ("valid", {}),
        ("unknown CA", {}),
        ("expired", {}),
        ("expiring", {"min_days_valid": 30}),
        ("wrong host", {}),
        ("silent", {}),
        ("refused", {}),
    ],
)
def test_tls_rules(servers: Servers, case: str, spec: dict[str, Any]) -> None:
    if case == "valid":
        port = servers.https().port
    elif case == "expiring":
        port = servers.https(not_after=days(10)).port
    elif case == "silent":
        port = servers.silent()
    elif case == "refused":
        port = free_port()
    else:
        port = int(TLS_SERVERS[case](servers).rsplit(":", 1)[1])
    target = Target(env="prod", ca_bundle=str(servers.ca_file), timeout=TIMEOUT)
    address = f"localhost:{port}"
    single = tls.run({"tls": address, **spec}, target)
    one = tls.run({"tls": "*", "targets": [address], **spec}, target).details["targets"][0]
    assert one["healthy"] == single.passed, (single.message, one["message"])
    assert one["message"] == single.message


@pytest.mark.parametrize("case", ["open", "refused", "unresolvable"])
def test_tcp_rules(servers: Servers, case: str) -> None:
    if case == "open":
        address = f"127.0.0.1:{servers.silent()}"
    elif case == "refused":
        address = f"127.0.0.1:{free_port()}"
    else:
        address = "no-such-host.invalid:80"
    target = Target(env="prod", timeout=TIMEOUT)
    single = tcp.run({"tcp": address}, target)
    one = tcp.run({"tcp": "*", "targets": [address]}, target).details["targets"][0]
    assert one["healthy"] == single.passed
    if not single.passed:
        assert one["message"] == single.message
