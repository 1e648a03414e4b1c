"""The grafana check kind against a loopback stand-in serving Grafana's /api/health shape.

Grafana itself is not in the package registries the CI can use (docs/ci-services.md);
the stand-in answers exactly what Grafana answers: 200 with database "ok", 503 with
database "failing" when its database is unreachable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pytest_promotion.checks import CheckConfigError, Target, grafana

from .conftest import TlsFiles, serve

pytestmark = pytest.mark.integration

T = Target(env="prod", timeout=5)
JSON = "application/json"


def health(status: int, doc: dict[str, str]) -> tuple[int, str, bytes]:
    return status, JSON, json.dumps(doc, indent=2).encode()


@pytest.fixture(scope="module")
def grafana_url() -> Iterator[str]:
    routes = {
        "/ok/api/health": health(
            200, {"commit": "03f502a94d", "database": "ok", "version": "10.4.2"}
        ),
        "/failing/api/health": health(
            503, {"commit": "03f502a94d", "database": "failing", "version": "10.4.2"}
        ),
        "/hidden/api/health": health(200, {"database": "ok"}),
        "/other/api/health": health(200, {"status": "ok"}),
        "/list/api/health": (200, JSON, b'["database", "ok"]'),
        "/string/api/health": (200, JSON, b'"ok"'),
        "/deep/api/health": (200, JSON, b"[" * 200_000 + b"]" * 200_000),
        "/bool/api/health": (200, JSON, b'{"database": true, "version": "10.4.2"}'),
        "/spaced/api/health": (200, JSON, b'{"database": "ok\\n", "version": "10.4.2\\nx"}'),
    }
    with serve(routes) as port:
        yield f"http://127.0.0.1:{port}"


def test_database_ok(grafana_url: str) -> None:
    out = grafana.run({"grafana": f"{grafana_url}/ok"}, T)
    assert out.passed, out.message
    assert out.message == f"grafana {grafana_url}/ok: Grafana 10.4.2, database ok"
    assert (out.measured, out.threshold) == ("10.4.2", 'database == "ok"')


def test_database_failing(grafana_url: str) -> None:
    out = grafana.run({"grafana": f"{grafana_url}/failing/"}, T)
    assert not out.passed
    assert out.message == (
        f"grafana {grafana_url}/failing/: HTTP 503, database 'failing' (expected 'ok'); "
        "Grafana 10.4.2 cannot reach its database"
    )
    assert out.measured == "10.4.2"


def test_hidden_version(grafana_url: str) -> None:
    out = grafana.run({"grafana": f"{grafana_url}/hidden"}, T)
    assert out.passed, out.message
    assert out.measured == "unknown"


def test_not_grafana(grafana_url: str) -> None:
    out = grafana.run({"grafana": f"{grafana_url}/other"}, T)
    assert not out.passed
    assert out.message.endswith("HTTP 200, /api/health has no 'database' field (is this Grafana?)")
    wrong = grafana.run({"grafana": f"{grafana_url}/nothing"}, T)
    assert not wrong.passed
    assert wrong.message == (
        f"grafana {grafana_url}/nothing/api/health: HTTP 404, body is not JSON ('not found')"
    )


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (
            "/list",
            "/list: HTTP 200, /api/health answered a list of 2, not an object with a "
            "'database' field (is this Grafana?)",
        ),
        (
            "/string",
            "/string: HTTP 200, /api/health answered a string, not an object with a "
            "'database' field (is this Grafana?)",
        ),
        ("/other", "/other: HTTP 200, /api/health has no 'database' field (is this Grafana?)"),
        ("/deep", "/deep/api/health: HTTP 200, JSON body nested too deeply"),
        (
            "/bool",
            "/bool: HTTP 200, database True (expected 'ok'); Grafana 10.4.2 cannot reach "
            "its database",
        ),
        (
            "/spaced",
            "/spaced: HTTP 200, database 'ok\\n' (expected 'ok'); Grafana 10.4.2 x cannot reach "
            "its database",
        ),
    ],
)
def test_malformed_health_fails_with_one_line(grafana_url: str, path: str, says: str) -> None:
    out = grafana.run({"grafana": grafana_url + path}, T)  # never raises
    assert not out.passed
    assert out.message == f"grafana {grafana_url}{says}"
    assert out.threshold == 'database == "ok"'


def test_relative_to_base_url_and_password_redacted(grafana_url: str) -> None:
    base = grafana_url.replace("http://", "http://admin:graf-Pa55word@")
    out = grafana.run({"grafana": "/ok"}, Target(env="prod", base_url=base))
    assert out.passed, out.message
    assert (
        out.message
        == f"grafana {base.replace('graf-Pa55word', '***')}/ok: Grafana 10.4.2, database ok"
    )


def test_down(grafana_url: str) -> None:
    from tests.support import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = grafana.run({"grafana": url}, T)
    assert not out.passed
    assert out.message == f"grafana {url}/api/health: connection refused by 127.0.0.1:{port}"


def test_validate() -> None:
    with pytest.raises(CheckConfigError) as info:
        grafana.validate({"grafana": "grafana.example.com"}, "promotion.toml: [[checks]] 'grafana'")
    assert str(info.value) == (
        "promotion.toml: [[checks]] 'grafana': key 'grafana': expected an http(s):// URL or a "
        "path starting with '/', found 'grafana.example.com'"
    )


def test_https_verified_with_the_ca_bundle(tls_files: TlsFiles) -> None:
    routes = {"/api/health": health(200, {"commit": "c", "database": "ok", "version": "11.0.0"})}
    with serve(routes, tls_files) as port:
        url = f"https://127.0.0.1:{port}"
        ok = grafana.run({"grafana": url}, Target(env="prod", ca_bundle=str(tls_files.ca)))
        unknown = grafana.run({"grafana": url}, T)
    assert ok.passed, ok.message
    assert ok.measured == "11.0.0"
    assert not unknown.passed
    assert unknown.message == (
        f"grafana {url}/api/health: certificate for 127.0.0.1 is issued by an unknown CA, "
        "not in the system trust store"
    )
