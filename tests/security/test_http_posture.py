"""Response posture against real HTTP(S) servers on loopback: required headers, version
banners, exposed debug paths; every failure names the header or path and what was expected."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_promotion.checks import http
from pytest_promotion.checks.base import CheckConfigError, Outcome, Target

from .conftest import Route, Server, Servers

pytestmark = pytest.mark.integration

HSTS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
}
SEED_HEADERS = {
    "strict-transport-security": r"max-age=\d{8,}.*",
    "X-Content-Type-Options": "nosniff",
}


def quiet(headers: dict[str, str]) -> Route:
    """A 200 with ``headers`` and no version in the Server header."""

    def route(h: Any) -> None:
        h.server_version, h.sys_version = "edge", ""
        h.reply(200, {"status": "ok"}, headers=headers)

    return route


ROUTES: dict[str, Route] = {
    "/": quiet(HSTS),
    "/no-hsts": quiet({"X-Content-Type-Options": "nosniff"}),
    "/short-hsts": quiet({**HSTS, "Strict-Transport-Security": "max-age=300"}),
    "/banner": lambda h: h.reply(
        200, {"status": "ok"}, headers={**HSTS, "X-Powered-By": "PHP/8.1"}
    ),
    "/debug/pprof/": lambda h: h.reply(200, "profiles", "text/html"),
    "/metrics": lambda h: h.reply(200, "up 1", "text/plain"),
    "/admin": lambda h: h.reply(403, "no", "text/plain"),
    "/login-redirect": lambda h: h.redirect("/login"),
}


def run(servers: Servers, server: Server, **spec: Any) -> Outcome:
    t = Target(env="prod", base_url=server.url, ca_bundle=str(servers.ca_file), timeout=3.0)
    return http.run({"http": "/", **spec}, t)


def test_with_hsts_passes_without_fails(servers: Servers) -> None:
    server = servers.https(ROUTES)
    ok = run(servers, server, expect_headers=SEED_HEADERS)
    assert ok.passed, ok.message
    assert ok.message.endswith("; expect headers ok")

    out = run(servers, server, http="/no-hsts", expect_headers=SEED_HEADERS)
    assert (out.passed, out.message) == (
        False,
        r"header strict-transport-security missing (expected /max-age=\d{8,}.*/)",
    )
    assert out.rollback is False  # a missing header blocks; it is not an outage

    short = run(servers, server, http="/short-hsts", expect_headers=SEED_HEADERS)
    assert short.message == (
        r"header strict-transport-security is 'max-age=300', expected /max-age=\d{8,}.*/"
    )


def test_version_banner_is_forbidden(servers: Servers) -> None:
    server = servers.http(ROUTES)
    out = run(servers, server, http="/banner", forbid_headers=[r"Server: .*\d", "X-Powered-By"])
    assert not out.passed
    # Python's http.server says its own version: exactly what the check is for
    assert out.message.startswith("header Server: 'BaseHTTP/")
    assert (
        r"is forbidden (Server: .*\d); header X-Powered-By: 'PHP/8.1' is forbidden (X-Powered-By)"
        in out.message
    )
    ok = run(servers, server, forbid_headers=[r"Server: .*\d", "X-Powered-By"])
    assert ok.passed, ok.message


def test_exposed_paths_are_counted_in_one_gate(servers: Servers) -> None:
    server = servers.https(ROUTES)
    out = run(
        servers,
        server,
        forbid_paths=["/debug/pprof/", "/.env", "/.git/config", "/admin", "/metrics"],
    )
    assert not out.passed
    assert out.message == ("3 of 5 paths hidden; /debug/pprof/ answered 200; /metrics answered 200")
    assert out.measured == "3 of 5 paths hidden"
    assert out.threshold == "status 401/403/404"
    assert out.rollback is False

    ok = run(servers, server, forbid_paths=["/.env", "/.git/config", "/admin"])
    assert ok.passed, ok.message
    assert ok.message.endswith("; 3 of 3 paths hidden")


def test_a_redirect_is_not_hidden_unless_listed(servers: Servers) -> None:
    server = servers.https(ROUTES)
    out = run(servers, server, forbid_paths=["/login-redirect"])
    assert out.message == "0 of 1 paths hidden; /login-redirect answered 302"
    ok = run(servers, server, forbid_paths=["/login-redirect"], forbid_paths_status=[302, 404])
    assert ok.passed, ok.message


def test_a_path_that_never_answers_is_not_hidden(servers: Servers) -> None:
    server = servers.https(ROUTES)
    t = Target(env="prod", base_url=server.url, ca_bundle=str(servers.ca_file), timeout=1.0)
    out = http.run({"http": "/", "forbid_paths": ["/.env", "/trickle"]}, t)
    assert not out.passed
    assert out.message.startswith("1 of 2 paths hidden; /trickle could not be probed: ")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"forbid_paths": ["debug"]},
            "W: key 'forbid_paths': expected a list of paths such as [\"/.env\", \"/debug/pprof/\"], found ['debug']",
        ),
        (
            {"forbid_paths_status": [200]},
            "W: key 'forbid_paths_status': expected a list of HTTP statuses, none of them 2xx, found [200]",
        ),
        (
            {"forbid_headers": ["Server: "]},
            "W: key 'forbid_headers': expected a header name or \"Name: value pattern\", found 'Server: '",
        ),
        (
            {"expect_headers": {"HSTS": "("}},
            "W: key 'expect_headers': expected a regular expression (missing ), unterminated "
            "subpattern at position 0), found '('",
        ),
    ],
)
def test_validate(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        http.validate({"http": "/", **spec}, "W")
    assert str(info.value) == message


def test_forbidden_paths_are_probed_without_credentials(servers: Servers) -> None:
    server = servers.https(ROUTES)
    out = run(servers, server, headers={"Authorization": "Bearer s3cret"}, forbid_paths=["/.env"])
    assert out.passed, out.message
    seen = {r["path"]: r["headers"] for r in server.requests}
    assert seen["/"]["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in seen["/.env"]
