"""The dry run: `pytest --env=NAME --promotion-plan` and `promotion plan --env NAME` list
every gate with trigger and threshold, exit 0, and probe, launch, decide, write nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports import REPORT_OPTION
from tests.support import child_environ

pytestmark = pytest.mark.integration

CONFIG = """
[environments.staging]
base_url = "${STAGING_URL}"          # not set: a plan does not resolve it
launch = ["{python}", "-c", "open('launched', 'w')"]
rollback = "deploy rollback {env}"

[[checks]]
name = "health"
from = "dev"
http = "/health"
max_latency_ms = 500
trigger = "rollback"

[[checks]]
name = "coverage"
from = "staging"
coverage = "build/coverage.xml"
min = 80

[[checks]]
name = "prod-only"
environments = ["prod"]
tcp = "db:5432"
"""

GATES = """
import pytest

@pytest.mark.staging
@pytest.mark.gate(name="smoke", trigger="rollback")
def test_smoke() -> None:
    open("ran", "w")

@pytest.mark.prod(only=True)
def test_prod_only() -> None:
    pass

def test_not_a_gate() -> None:
    pass
"""


def _assert_nothing_happened(root: Path) -> None:
    for name in ("ran", "launched", "decision.json", "gate.xml", ".promotion"):
        assert not (root / name).exists(), name


def test_pytest_plan_lists_every_gate_and_runs_none(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", promotion=CONFIG)
    pytester.makepyfile(test_gates=GATES)
    # --promotion-plan writes no report: run by hand, with the option a real run would have
    result = pytester.runpytest_subprocess(
        "--env=staging", "--promotion-plan", "-p", "no:cacheprovider", REPORT_OPTION
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "promotion plan: dev -> ?staging? -> prod (config: promotion.toml): 3 gates, nothing run, no decision",
            "gate *checks *trigger *threshold",
            "staging::health *http /health *rollback *max_latency_ms = 500",
            "staging::coverage *coverage build/coverage.xml *block *min = 80",
            "smoke *test_gates.py::test_smoke *rollback *(gate.measure at run time)",
            "(2 collected tests are not gates of staging)",
        ]
    )
    assert "prod-only" not in result.stdout.str()
    assert "decision:" not in result.stdout.str()
    _assert_nothing_happened(pytester.path)


def test_promotion_plan_command(tmp_path: Path) -> None:
    (tmp_path / "promotion.toml").write_text(CONFIG)
    (tmp_path / "gates").mkdir()
    (tmp_path / "gates" / "test_gates.py").write_text(GATES)
    result = subprocess.run(
        [sys.executable, "-m", "pytest_promotion.cli", "plan", "--env", "prod"],
        cwd=tmp_path, env=child_environ(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for gate in (
        "prod::health",
        "prod::coverage",
        "prod::prod-only",
        "smoke",
        "gates/test_gates.py::test_prod_only",
    ):
        assert gate in result.stdout
    _assert_nothing_happened(tmp_path)


def test_plan_of_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "promotion.toml").write_text(CONFIG)
    result = subprocess.run(
        [sys.executable, "-m", "pytest_promotion.cli", "plan", "--env", "qa"],
        cwd=tmp_path, env=child_environ(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 4
    assert "--env qa: unknown environment (known: dev, staging, prod" in result.stderr
