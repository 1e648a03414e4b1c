"""`promotion init` writes the ready security gate set of docs/security-checks.md, the
scaffold still validates, and the demo target answers the response-posture check."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_promotion.demo import DemoService
from tests.support import child_environ

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoService]:
    service = DemoService.start(version="1.0.0")
    yield service
    service.stop()


def _promotion(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = child_environ(
        DEV_URL="https://dev.example.com",
        STAGING_URL="https://staging.example.com",
        PROD_URL="https://example.com",
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest_promotion.cli", *argv],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _checks(root: Path) -> dict[str, dict[str, Any]]:
    config = tomllib.loads((root / "promotion.toml").read_text())
    return {check["name"]: check for check in config["checks"]}


@pytest.mark.parametrize("python", [False, True], ids=["bare", "python"])
def test_init_writes_the_security_gate_set_and_it_validates(tmp_path: Path, python: bool) -> None:
    if python:
        (tmp_path / "mypkg").mkdir()
        (tmp_path / "mypkg" / "__init__.py").write_text("")
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "mypkg"\nversion = "0.1"\n')
    assert _promotion(tmp_path, "init", "--ci", "github").returncode == 0
    checks = _checks(tmp_path)

    tls = checks["tls-posture"]
    assert tls["refuse_below"] == "1.2" and tls["require_forward_secrecy"] is True
    assert {"RC4", "3DES", "NULL", "EXPORT"} <= set(tls["forbid_ciphers"])
    response = checks["response-posture"]
    assert set(response["expect_headers"]) == {
        "Strict-Transport-Security",
        "X-Content-Type-Options",
    }
    assert "Server: .*\\d" in response["forbid_headers"]
    assert "/.git/config" in response["forbid_paths"]
    key = checks["tls-key-private"]
    assert key["mode"] == "0600" and key["not_world_readable"] is True
    findings = checks["dependencies"]
    assert ("pip_audit" in findings) if python else ("sarif" in findings)
    assert "max_critical" not in findings  # the seed's limits are the kinds' defaults

    validated = _promotion(tmp_path, "validate")
    assert validated.returncode == 0, validated.stderr
    assert "dev::response-posture" in validated.stdout
    assert "staging::tls-posture" in validated.stdout
    assert "prod::tls-key-private" in validated.stdout


def test_demo_target_sends_the_response_posture_headers(demo: DemoService) -> None:
    response = requests.get(f"{demo.url}/health", verify=demo.ca_bundle, timeout=10)
    assert response.status_code == 200
    hsts = response.headers["Strict-Transport-Security"]
    assert int(hsts.removeprefix("max-age=").split(";")[0]) >= 365 * 24 * 3600
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert not any(c.isdigit() for c in response.headers.get("Server", ""))
    missing = requests.get(f"{demo.url}/.env", verify=demo.ca_bundle, timeout=10)
    assert missing.status_code == 404
    assert not any(c.isdigit() for c in missing.headers.get("Server", ""))
