"""`promotion init` end to end, per detected layout and per --ci: the scaffold validates,
plans and (where its tools are here) promotes dev against the demo target."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_promotion.demo import DemoService
from tests.support import child_environ

LAYOUTS = ("bare", "python", "go", "docker")

# real servers, subprocess pytest runs, external checkers: the integration tier
pytestmark = pytest.mark.integration


def _make_layout(root: Path, layout: str) -> None:
    if layout == "python":
        (root / "mypkg").mkdir()
        (root / "tests").mkdir()
        (root / "pyproject.toml").write_text('[project]\nname = "mypkg"\nversion = "0.1"\n')
        (root / "mypkg" / "__init__.py").write_text(
            "def add(a: int, b: int) -> int:\n    return a + b\n"
        )
        (root / "tests" / "test_add.py").write_text(
            "from mypkg import add\n\n\ndef test_add() -> None:\n    assert add(1, 2) == 3\n"
        )
    elif layout == "go":
        (root / "go.mod").write_text("module example.com/svc\n\ngo 1.22\n")
    elif layout == "docker":
        (root / "Dockerfile").write_text("FROM python:3.12-slim\n")


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoService]:
    service = DemoService.start(version="1.0.0")
    yield service
    service.stop()


def _env(demo: DemoService) -> dict[str, str]:
    # The demo's CA stands in for the system store a real deployment's CA is in: the
    # scaffold is used exactly as written.
    return child_environ(
        DEV_URL=demo.url,
        STAGING_URL=demo.url,
        PROD_URL=demo.url,
        SSL_CERT_FILE=demo.ca_bundle,
        REQUESTS_CA_BUNDLE=demo.ca_bundle,
    )


def _run(root: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _init(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _run(root, env, "pytest_promotion.cli", "init", *args)


CI_PATHS = {
    "github": ".github/workflows/environment-promotion.yml",
    "gitlab": ".gitlab-ci.yml",
    "jenkins": "Jenkinsfile",
}


@pytest.mark.parametrize("ci", ["github", "gitlab", "jenkins"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_init_writes_a_scaffold_that_validates(
    tmp_path: Path, demo: DemoService, layout: str, ci: str
) -> None:
    _make_layout(tmp_path, layout)
    env = _env(demo)
    result = _init(tmp_path, env, "--ci", ci)
    assert result.returncode == 0, result.stderr
    for path in ("promotion.toml", "gates/test_smoke.py", "Makefile", CI_PATHS[ci]):
        assert f"wrote    {path}" in result.stdout
        assert (tmp_path / path).is_file()
    assert "next:" in result.stdout and "pytest --env=dev gates/" in result.stdout
    config = (tmp_path / "promotion.toml").read_text()
    expected = {"python": "unit-tests", "go": "go-vet", "docker": "image-scan", "bare": "health"}
    assert f'name = "{expected[layout]}"' in config
    validated = _run(tmp_path, env, "pytest_promotion.cli", "validate")
    assert validated.returncode == 0, validated.stderr
    assert "dev: dev::health" in validated.stdout


@pytest.mark.parametrize("layout", ["bare", "python"])
def test_scaffold_promotes_dev_against_the_demo(
    tmp_path: Path, demo: DemoService, layout: str
) -> None:
    _make_layout(tmp_path, layout)
    env = _env(demo)
    assert _init(tmp_path, env, "--ci", "github").returncode == 0
    gate = _run(tmp_path, env, "pytest", "--env=dev", "gates/", "-p", "no:cacheprovider")
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "decision: PROMOTE -> dev" in gate.stdout
    if layout == "python":
        assert "dev::coverage" in gate.stdout and "dev::unit-tests" in gate.stdout


def test_init_refuses_to_overwrite_then_force_lists_what_it_replaces(
    tmp_path: Path, demo: DemoService
) -> None:
    env = _env(demo)
    (tmp_path / "promotion.toml").write_text("# mine\n")
    refused = _init(tmp_path, env)
    assert refused.returncode == 4
    assert refused.stderr.strip() == (
        "ERROR: promotion init: would replace promotion.toml: nothing written "
        "(--force replaces them)"
    )
    assert (tmp_path / "promotion.toml").read_text() == "# mine\n"
    assert not (tmp_path / "gates").exists()
    forced = _init(tmp_path, env, "--force")
    assert forced.returncode == 0
    assert "replaced promotion.toml" in forced.stdout


def test_existing_makefile_gets_targets_only_when_asked(tmp_path: Path, demo: DemoService) -> None:
    env = _env(demo)
    (tmp_path / "Makefile").write_text("all:\n\ttrue\n")
    first = _init(tmp_path, env)
    assert "kept     Makefile as it is" in first.stdout
    assert (tmp_path / "Makefile").read_text() == "all:\n\ttrue\n"
    (tmp_path / "promotion.toml").unlink()
    (tmp_path / "gates" / "test_smoke.py").unlink()
    second = _init(tmp_path, env, "--makefile")
    assert "added to Makefile" in second.stdout
    text = (tmp_path / "Makefile").read_text()
    assert text.startswith("all:\n\ttrue\n") and "promote-dev promote-staging promote-prod:" in text
    dry = subprocess.run(
        ["make", "-n", "promote-staging"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert "-m pytest --env=staging gates/ --junitxml=gate-staging.xml" in dry.stdout


def test_existing_ci_is_detected(tmp_path: Path, demo: DemoService) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("test:\n  script: [true]\n")
    result = _init(tmp_path, _env(demo), "--force")
    assert "CI: gitlab" in result.stdout
    assert "replaced .gitlab-ci.yml" in result.stdout
