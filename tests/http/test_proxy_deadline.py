"""Through HTTP_PROXY the whole-exchange deadline applies too (issue 11, item 17): a proxy
trickling one byte every 0.2 s kept a 2 s check running as long as it trickled."""

from __future__ import annotations

import socket
import time

import pytest

from pytest_promotion.checks import http

from .conftest import Servers
from .test_http import check


def _unused_port() -> int:
    """A port nothing listens on: the proxy never connects to it, and requests' proxy
    lookup (cached per origin) sees an origin no other test used."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("scheme", "first"),
    [
        ("http", b"HTTP/1.1 200 OK\r\nX-Slow: "),  # the proxy forwards a GET
        ("https", b"HTTP/1.1 200 Connection established\r\nX-Slow: "),  # CONNECT
    ],
)
def test_a_trickling_proxy_fails_at_the_deadline(
    servers: Servers, monkeypatch: pytest.MonkeyPatch, scheme: str, first: bytes
) -> None:
    proxy = f"http://127.0.0.1:{servers.trickler(first)}"
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy)
    start = time.monotonic()
    out = check(servers, f"{scheme}://127.0.0.1:{_unused_port()}", "/health", timeout=2)
    elapsed = time.monotonic() - start
    assert (out.passed, out.message) == (False, "no response within 2 s")
    assert elapsed < 15, f"the check took {elapsed:.1f} s"  # a hang detector, not a timing
    assert http.KEYS  # the module under test is the http kind
