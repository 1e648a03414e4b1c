"""`promotion demo [--fault F]`: each fault of the demo target ends in the decision the
README documents, from the installed package in an empty directory (no repository)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from pytest_promotion.demo import DemoService
from pytest_promotion.demo.suite import EXPECTED
from tests.support import child_environ

# real servers, subprocess pytest runs, external checkers: the integration tier
pytestmark = pytest.mark.integration


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest_promotion.cli", "demo", *args]
    return subprocess.run(
        argv, cwd=tmp_path, env=child_environ(), capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("fault", list(EXPECTED), ids=lambda f: f or "healthy")
def test_each_fault_ends_in_its_documented_decision(tmp_path: Path, fault: str | None) -> None:
    decision, gate = EXPECTED[fault]
    suite = tmp_path / "suite"
    result = _demo(tmp_path, "--keep", str(suite), *(["--fault", fault] if fault else []))
    assert f"decision: {decision} " in result.stdout, result.stdout + result.stderr
    report = json.loads((suite / "decision.json").read_text())
    assert report["decision"] == decision.lower()
    if decision == "PROMOTE":
        assert result.returncode == 0
        return
    assert result.returncode == 1
    assert f"reason: gate {gate}" in result.stdout
    assert "rollback command: gh workflow run environment-promotion.yml" in result.stdout


def test_unknown_fault_is_a_usage_error(tmp_path: Path) -> None:
    result = _demo(tmp_path, "--fault", "explode")
    assert result.returncode == 4
    assert "invalid choice: 'explode'" in result.stderr


def test_list_faults_names_each_decision(tmp_path: Path) -> None:
    result = _demo(tmp_path, "--list-faults")
    assert result.returncode == 0
    assert "unhealthy" in result.stdout and "ROLLBACK (dev::health)" in result.stdout
    assert "expiring" in result.stdout and "BLOCK (dev::certificate)" in result.stdout


def test_faulty_target_answers_as_documented() -> None:
    demo = DemoService.start(version="1.2.3", fault="500")
    try:
        response = requests.get(f"{demo.url}/health", verify=demo.ca_bundle, timeout=5)
        assert response.status_code == 500
    finally:
        demo.stop()
    with pytest.raises(ValueError, match="unknown fault 'nope'"):
        DemoService.start(fault="nope")


def test_demo_serve_writes_its_variables_and_is_ready(tmp_path: Path) -> None:
    env_file = tmp_path / "demo.env"
    argv = [sys.executable, "-m", "pytest_promotion.demo"]
    server = subprocess.Popen(
        [*argv, "serve", "--env-file", str(env_file), "--fault", "version"],
        env=child_environ(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert "demo target on https://127.0.0.1:" in server.stdout.readline()
        ready = subprocess.run([*argv, "ready", str(env_file)], timeout=30, check=False)
        assert ready.returncode == 0
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        body = requests.get(
            values["PROMOTION_DEMO_URL"] + "/health", verify=values["PROMOTION_DEMO_CA"], timeout=5
        ).json()
        assert body["version"] == "0.0.0-stale"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not env_file.exists()  # removed on SIGTERM: a stale file never says "ready"
    not_ready = subprocess.run([*argv, "ready", str(env_file)], timeout=30, capture_output=True)
    assert not_ready.returncode == 1
