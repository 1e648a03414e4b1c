from __future__ import annotations

import re
import ssl
import time
from typing import Any

import pytest

from pytest_promotion.checks import http
from pytest_promotion.checks.base import CheckConfigError, CheckFailed, Outcome, Target
from tests.support import free_port

from .conftest import Servers, days

pytestmark = pytest.mark.integration

INSECURE = "TLS verification disabled (insecure = true)"


def target(servers: Servers, base_url: str | None, **kw: Any) -> Target:
    kw.setdefault("timeout", 1.0)
    return Target(env="staging", base_url=base_url, ca_bundle=str(servers.ca_file), **kw)


def check(servers: Servers, base_url: str | None, value: str, **spec: Any) -> Outcome:
    tkw = {k: spec.pop(k) for k in ("insecure", "secrets") if k in spec}
    return http.run({"http": value, **spec}, target(servers, base_url, **tkw))


# --- what passes -------------------------------------------------------------


def test_healthy_https_endpoint_passes(servers: Servers) -> None:
    server = servers.https()
    out = check(
        servers,
        server.url,
        "/health",
        expect_status=200,
        expect_json={"status": "ok"},
        max_latency_ms=2000,
    )
    assert out.passed, out.message
    assert re.fullmatch(r"200 in \d+ ms", out.message)
    assert isinstance(out.measured, float) and out.unit == "ms"
    assert out.threshold == "<= 2000 ms"
    assert out.details["warnings"] == []


def test_nested_and_dotted_json_keys(servers: Servers) -> None:
    server = servers.https()
    ok = check(servers, server.url, "/health", expect_json={"checks.db": "ok", "items.0.n": 1})
    assert ok.passed, ok.message
    nested = check(servers, server.url, "/health", expect_json={"checks": {"db": "fail"}})
    assert not nested.passed
    assert nested.message == 'checks.db: expected "fail", got "ok"'


def test_full_url_without_base_url(servers: Servers) -> None:
    server = servers.http()
    assert check(servers, None, server.url + "/health").passed
    out = check(servers, None, "/health")
    assert out.message == "/health is a path, but the environment has no base_url"


# --- what a failing service looks like ----------------------------------------


def test_200_with_status_down_fails_on_expect_json(servers: Servers) -> None:
    server = servers.https()
    out = check(servers, server.url, "/down", expect_json={"status": "ok"})
    assert not out.passed
    assert out.message == 'status: expected "ok", got "DOWN"'
    # without expect_json the body is not judged: 200 is a pass
    assert check(servers, server.url, "/down").passed


def test_every_json_mismatch_is_named(servers: Servers) -> None:
    server = servers.https()
    out = check(
        servers,
        server.url,
        "/down",
        expect_json={"status": "ok", "checks.db": "ok", "version": "1.2"},
    )
    assert out.message == (
        'status: expected "ok", got "DOWN"; checks.db: expected "ok", got "DOWN"; '
        'version: expected "1.2", got nothing (no such key)'
    )


def test_wrong_status(servers: Servers) -> None:
    server = servers.https()
    out = check(servers, server.url, "/unavailable", expect_status=200)
    assert (out.passed, out.message, out.measured, out.threshold) == (
        False,
        "expected 200, got 503",
        503,
        "status 200",
    )
    out = check(servers, server.url, "/unavailable")
    assert out.message == "expected 2xx, got 503"
    assert check(servers, server.url, "/unavailable", expect_status=[200, 503]).passed


def test_body_not_json(servers: Servers) -> None:
    server = servers.http()
    out = check(servers, server.url, "/html", expect_json={"status": "ok"})
    assert not out.passed
    assert out.message == "body is not JSON (text/html): '<!doctype html><p>hello</p>'"


def test_expect_body_regex(servers: Servers) -> None:
    server = servers.http()
    assert check(servers, server.url, "/html", expect_body=r"<p>hel+o").passed
    out = check(servers, server.url, "/html", expect_body="goodbye")
    assert out.message == "body does not match /goodbye/"


def test_latency_over_limit(servers: Servers) -> None:
    server = servers.http()
    out = check(servers, server.url, "/slow", max_latency_ms=100)
    assert not out.passed
    assert re.fullmatch(r"\d+ ms > 100 ms", out.message), out.message
    assert isinstance(out.measured, float) and out.measured >= 300
    assert out.threshold == "<= 100 ms"


def test_connection_refused_names_host_and_port() -> None:
    port = free_port()
    out = http.run(
        {"http": "/health"}, Target(env="dev", base_url=f"http://127.0.0.1:{port}", timeout=1)
    )
    assert (out.passed, out.message) == (False, f"connection refused by 127.0.0.1:{port}")


def test_server_that_never_answers_times_out(servers: Servers) -> None:
    port = servers.silent()
    start = time.monotonic()
    out = check(servers, f"http://127.0.0.1:{port}", "/health", timeout=0.5)
    assert (out.passed, out.message) == (False, "no response within 0.5 s")
    assert time.monotonic() - start < 1.5


def test_body_one_byte_a_second_fails_at_the_deadline(servers: Servers) -> None:
    server = servers.http()
    start = time.monotonic()
    out = check(servers, server.url, "/trickle", timeout=0.5)
    elapsed = time.monotonic() - start
    assert (out.passed, out.message) == (False, "response body not complete within 0.5 s")
    assert elapsed < 1.5


def test_endless_body_is_capped(servers: Servers) -> None:
    server = servers.http()
    start = time.monotonic()
    out = check(
        servers, server.url, "/endless", expect_json={"status": "ok"}, max_body_bytes=100_000
    )
    assert (out.passed, out.message) == (
        False,
        "response body larger than 100000 bytes (max_body_bytes)",
    )
    # a status-only check reads up to the cap and does not judge the rest
    out = check(servers, server.url, "/endless")
    assert out.passed and out.details["body_truncated"] is True
    assert time.monotonic() - start < 3


# --- TLS ----------------------------------------------------------------------


def test_expired_certificate(servers: Servers) -> None:
    server = servers.https(not_before=days(-30), not_after=days(-2))
    out = check(servers, server.url, "/health")
    assert (out.passed, out.message) == (False, "certificate for localhost expired")


def test_hostname_mismatch(servers: Servers) -> None:
    server = servers.https(None, "wrong.example")
    out = check(servers, server.url, "/health")
    assert (out.passed, out.message) == (False, "certificate does not match hostname localhost")


def test_unknown_ca(servers: Servers) -> None:
    server = servers.https(ca=servers.other_ca)
    out = check(servers, server.url, "/health")
    assert not out.passed
    assert out.message == (
        f"certificate for localhost is issued by an unknown CA, not in ca_bundle {servers.ca_file}"
    )


def test_insecure_turns_verification_off_loudly(servers: Servers) -> None:
    server = servers.https(ca=servers.other_ca)
    out = check(servers, server.url, "/health", insecure=True)
    assert out.passed
    assert out.message.endswith("; " + INSECURE)
    assert out.details["warnings"] == [INSECURE]


def test_plain_http_on_https_url(servers: Servers) -> None:
    server = servers.http()
    out = check(servers, f"https://127.0.0.1:{server.port}", "/health")
    assert out.message == "127.0.0.1 did not answer with TLS (plain HTTP on a TLS port?)"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_protocol_version_rejected(servers: Servers) -> None:
    try:
        server = servers.https(max_version=ssl.TLSVersion.TLSv1_1)
        server.context.set_ciphers("DEFAULT:@SECLEVEL=0")  # type: ignore[union-attr]
        server.context.minimum_version = ssl.TLSVersion.TLSv1  # type: ignore[union-attr]
    except (ssl.SSLError, ValueError) as exc:
        pytest.skip(f"this OpenSSL cannot serve TLS 1.1: {exc}")
    out = check(servers, server.url, "/health")
    assert not out.passed
    assert out.message.startswith("TLS protocol version rejected by localhost"), out.message


# --- redirects ------------------------------------------------------------------


def test_same_origin_redirect_is_followed_with_credentials(servers: Servers) -> None:
    server = servers.https()
    out = check(
        servers,
        server.url,
        "/redirect-same",
        expect_json={"status": "ok"},
        headers={"Authorization": "Bearer tok-123456"},
    )
    assert out.passed, out.message
    assert [r["path"] for r in server.requests] == ["/redirect-same", "/health"]
    assert server.requests[1]["headers"]["Authorization"] == "Bearer tok-123456"


def test_redirect_to_another_host_is_not_followed(servers: Servers) -> None:
    other = servers.http(host="127.0.0.2")
    first = servers.http({"/go": lambda h: h.redirect(f"{other.url}/health")})
    out = check(servers, first.url, "/go", headers={"Authorization": "Bearer tok-123456"})
    assert not out.passed
    assert out.message == (
        f"expected 2xx, got 302 (redirect to {other.url}/health not followed (another host))"
    )
    # the same through the session a Python gate uses: a failure, not a 302 that
    # response.ok would call a success; allow_redirects=False asks for the redirect itself
    with http.session_for(
        target(servers, first.url), headers={"Authorization": "Bearer tok-1"}
    ) as s:
        with pytest.raises(CheckFailed) as info:
            s.get("/go")
        assert info.value.message == (
            f"302 redirect to {other.url}/health not followed (another host)"
        )
        assert s.get("/go", allow_redirects=False).status_code == 302
    assert other.requests == []  # nothing, and so no Authorization, reached the other host
    # asked for explicitly, the redirect itself is the expected answer
    assert check(servers, first.url, "/go", expect_status=302).passed


def test_redirect_http_to_https_is_not_followed(servers: Servers) -> None:
    secure = servers.https()
    plain = servers.http(
        {"/go": lambda h: h.redirect(f"https://127.0.0.1:{secure.port}/health", 301)}
    )
    out = check(servers, plain.url, "/go")
    assert out.message == (
        f"expected 2xx, got 301 (redirect to https://127.0.0.1:{secure.port}/health "
        "not followed (another scheme))"
    )
    assert secure.requests == []


def test_redirect_loop(servers: Servers) -> None:
    server = servers.http()
    out = check(servers, server.url, "/loop")
    assert (out.passed, out.message) == (False, "too many redirects (more than 5)")
    assert len(server.requests) == 6


# --- secrets ------------------------------------------------------------------------


def test_secrets_never_reach_messages_or_details(servers: Servers) -> None:
    server = servers.http()
    token = "Bearer tok-SECRET-9876"
    url = server.url.replace("http://", "http://deploy:pw-SECRET-42@")
    out = check(
        servers,
        url,
        "/echo-auth?key=pw-SECRET-42",
        headers={"X-Api-Key": "key-SECRET-1", "Authorization": token},
        secrets=("pw-SECRET-42",),
    )
    text = repr(out)
    assert not out.passed and out.message == "expected 2xx, got 500"
    assert "SECRET" not in text, text
    assert "tok-" not in text
    # URL credentials win over the header (requests' rule); their Basic form is redacted too
    sent = server.requests[0]["headers"]["Authorization"]
    assert sent.startswith("Basic ") and sent[6:] not in text

    plain = check(servers, server.url, "/echo-auth", headers={"Authorization": token})
    assert server.requests[1]["headers"]["Authorization"] == token  # sent, just never shown
    assert "tok-SECRET" not in repr(plain)

    port = free_port()
    refused = check(
        servers, f"http://deploy:pw-SECRET-42@127.0.0.1:{port}", "/x?token=pw-SECRET-42"
    )
    assert refused.message == f"connection refused by 127.0.0.1:{port}"
    assert "SECRET" not in repr(refused)


# --- the session for Python gates -------------------------------------------------


def test_bound_session(servers: Servers) -> None:
    server = servers.https()
    with http.session_for(target(servers, server.url)) as s:
        response = s.get("/health")
        assert response.json()["status"] == "ok"
        assert response.elapsed.total_seconds() < 1
        assert s.get("/redirect-same").json()["status"] == "ok"


def test_bound_session_raises_one_line(servers: Servers) -> None:
    server = servers.http()
    port = servers.silent()
    with http.session_for(target(servers, server.url, timeout=0.5), max_body_bytes=1000) as s:
        with pytest.raises(CheckFailed, match=r"^response body larger than 1000 bytes$"):
            s.get("/endless")
        with pytest.raises(CheckFailed, match=r"^no response within 0\.5 s$"):
            s.get(f"http://127.0.0.1:{port}/")


def test_bound_session_refuses_what_would_unbound_it(servers: Servers) -> None:
    server = servers.http()
    with http.session_for(target(servers, server.url)) as s:
        assert not hasattr(s, "session")  # no public requests.Session around the rules
        for bad in (float("inf"), 0, -1, (1, 2), True):
            with pytest.raises(ValueError, match=r"^timeout: expected a number of seconds > 0"):
                s.get("/health", timeout=bad)
        with pytest.raises(ValueError, match=r"^proxies cannot be set per request"):
            s.get("/health", proxies={"http": "http://127.0.0.1:9"})
        assert s.get("/health", timeout=2).json()["status"] == "ok"


def test_a_refused_credential_header_is_masked(servers: Servers) -> None:
    # A token read from a file with its newline: requests refuses the header before
    # sending anything, and its message showed the whole value.
    server = servers.http()
    with http.session_for(target(servers, server.url)) as s, pytest.raises(CheckFailed) as info:
        s.get("/health", headers={"Authorization": "Bearer s3cr3t-T0KEN-value\n"})
    assert "s3cr3t-T0KEN-value" not in info.value.message
    assert "***" in info.value.message


# --- validation -------------------------------------------------------------------


STATUS = "W: key 'expect_status': expected an HTTP status (100-599) or a list of them"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"http": "ftp://x/y"},
            "W: key 'http': expected an http:// or https:// URL, found 'ftp://x/y'",
        ),
        (
            {"http": "/h", "method": "FETCH"},
            "W: key 'method': expected DELETE or GET or HEAD or OPTIONS or PATCH or POST or PUT, "
            "found 'FETCH'",
        ),
        (
            {"http": "/h", "expect_status": "200"},
            f"{STATUS}, found '200'",
        ),
        (
            {"http": "/h", "expect_status": [200, 999]},
            f"{STATUS}, found [200, 999]",
        ),
        (
            {"http": "/h", "max_latency_ms": 0},
            "W: key 'max_latency_ms': expected a number > 0, found 0",
        ),
        (
            {"http": "/h", "headers": {"A": 1}},
            "W: key 'headers': expected a table of strings, found 'A = 1'",
        ),
        (
            {"http": "/h", "expect_json": {"status": "ok", "checks": {}}},
            "W: key 'expect_json': expected the values to expect (an empty table checks nothing), "
            "found 'checks = {}'",
        ),
        (
            {"http": "/h", "expect_json": {}},
            "W: key 'expect_json': expected the values to expect (an empty table checks nothing), "
            "found 'expect_json = {}'",
        ),
    ],
)
def test_validate(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        http.validate(spec, "W")
    assert str(info.value) == message


def test_validate_regex() -> None:
    with pytest.raises(
        CheckConfigError, match=r"^W: key 'expect_body': expected a regular expression"
    ):
        http.validate({"http": "/h", "expect_body": "("}, "W")
    http.validate({"http": "/h", "expect_status": [200, 204], "expect_body": "ok"}, "W")


def test_missing_ca_bundle_is_named(servers: Servers, tmp_path: Any) -> None:
    server = servers.https()
    missing = tmp_path / "nope.pem"
    t = Target(env="prod", base_url=server.url, ca_bundle=str(missing), timeout=1)
    out = http.run({"http": "/health"}, t)
    assert (out.passed, out.message) == (False, f"ca_bundle {missing} does not exist")
    with http.session_for(t) as s, pytest.raises(CheckFailed, match="invalid path"):
        s.get("/health")


def test_verify_cannot_be_switched_off_per_request(servers: Servers) -> None:
    server = servers.https()
    with http.session_for(target(servers, server.url)) as s, pytest.raises(ValueError):
        s.get("/health", verify=False)


def test_tls_handshake_trickle_fails_at_the_deadline(servers: Servers) -> None:
    port = servers.trickler()
    start = time.monotonic()
    out = check(servers, f"https://127.0.0.1:{port}", "/health", timeout=0.5)
    assert not out.passed
    assert out.message == "no response within 0.5 s"
    assert time.monotonic() - start < 1.5


def test_headers_trickle_fails_at_the_deadline(servers: Servers) -> None:
    port = servers.trickler(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    start = time.monotonic()
    out = check(servers, f"http://127.0.0.1:{port}", "/health", timeout=0.5)
    assert (out.passed, out.message) == (False, "no response within 0.5 s")
    assert time.monotonic() - start < 1.5


# --- trust is loaded once per setting, never shared across settings ------------


def test_an_insecure_check_never_lends_its_trust_to_a_verified_one(servers: Servers) -> None:
    server = servers.https(ca=servers.other_ca)
    assert check(servers, server.url, "/health", insecure=True).passed
    verified = check(servers, server.url, "/health")
    assert not verified.passed
    assert "issued by an unknown CA" in verified.message


def test_a_ca_bundle_rewritten_on_disk_is_trusted_as_it_now_is(servers: Servers) -> None:
    server = servers.https(ca=servers.other_ca)
    assert "unknown CA" in check(servers, server.url, "/health").message
    servers.other_ca.cert_pem.write_to_path(str(servers.ca_file))  # the CA was rotated
    assert check(servers, server.url, "/health").passed


def test_target_repr_shows_no_secret() -> None:
    # What --showlocals prints for a check module's frame (pytest truncates long reprs, so
    # a secret cut in half would escape the masking of the whole value).
    target = Target(
        env="dev",
        base_url="https://deploy:tok-SECRET-123@127.0.0.1:8443/app",
        secrets=("tok-SECRET-123", "hunter2secret"),
        settings={"redis": "redis://:hunter2secret@127.0.0.1:6379/0"},
    )
    shown = repr(target)
    assert (
        shown
        == "Target(env='dev', base_url='https://deploy:***@127.0.0.1:8443/app', insecure=False)"
    )
    assert "SECRET" not in shown and "hunter2" not in shown


def test_plain_http_to_a_tls_port_says_reset_and_suggests_https(servers: Servers) -> None:
    server = servers.https()
    plain = server.url.replace("https://", "http://", 1)
    out = check(servers, None, plain + "/health")
    assert not out.passed
    hostport = plain.split("://", 1)[1]
    assert out.message == f"{hostport} reset the connection: if it serves TLS, use https://"


def test_the_http_fixture_fails_a_gate_in_the_gate_authors_frame(
    pytester: pytest.Pytester, servers: Servers
) -> None:
    """A connection error in a Python gate: the traceback shows the gate's own line, not
    the frames of the session inside the plugin (it was about 40 lines of them)."""
    port = servers.silent()  # a port that accepts and never answers
    pytester.makefile(
        ".toml",
        promotion=f'[environments.dev]\nbase_url = "http://127.0.0.1:{port}"\ntimeout = 0.5\n'
        "insecure = true\n",
    )
    pytester.makepyfile(
        "import pytest\n@pytest.mark.dev\ndef test_health(http):\n    http.get('/health')\n"
    )
    result = pytester.runpytest_subprocess("--env=dev")
    assert result.ret == 1
    text = result.stdout.str()
    failure = text.split("_ test_health _", 1)[1].split("= short test summary", 1)[0]
    assert "http_session.py" not in failure
    assert "    http.get('/health')" in failure
    assert "no response within 0.5 s" in failure
