"""JUnit properties, the JSON file, GitHub Actions outputs: what CI reads."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.reports import RunAndParse

FAILING = "import pytest\n@pytest.mark.dev\n@pytest.mark.gate(name='lint')\ndef test_lint():\n    assert False, 'lint failed'\n"
PASSING = "import pytest\n@pytest.mark.dev\ndef test_ok(gate):\n    gate.measure(3, max=5)\n"
ROLLBACK = '[environments.staging]\nrollback = "deploy rollback --env {env}"\n'


def suite_properties(path: Path) -> dict[str, str]:
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    props = suite.find("properties")
    return {p.get("name", ""): p.get("value", "") for p in (props if props is not None else [])}


@pytest.mark.parametrize("xdist", [False, True])
@pytest.mark.integration
def test_junit_suite_properties(pytester: pytest.Pytester, xdist: bool) -> None:
    pytester.makefile(".toml", promotion=ROLLBACK)
    pytester.makepyfile(FAILING)
    args = ["--env=staging", "--junitxml=gate.xml"] + (["-n", "2"] if xdist else [])
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == 1
    props = suite_properties(pytester.path / "gate.xml")
    assert props["promotion.environment"] == "staging"
    assert props["promotion.decision"] == "block"
    assert props["promotion.rollback_command"] == "deploy rollback --env staging"
    assert props["promotion.reason.1"].startswith("gate lint (")


def test_junit_case_carries_gate_measurement(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    pytester.runpytest("--env=staging", "--junitxml=gate.xml")
    case = ET.parse(pytester.path / "gate.xml").getroot().find(".//testcase")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["promotion.measured"] == "3"
    assert props["promotion.threshold"] == "<= 5"


def test_stale_promote_report_is_replaced_at_start(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    stale = pytester.path / "decision.json"
    stale.write_text(json.dumps({"decision": "promote"}))
    pytester.makepyfile(
        """
        import json, pathlib, pytest
        @pytest.mark.dev
        def test_peek():
            # While the run is going, the file must not say promote.
            data = json.loads(pathlib.Path("decision.json").read_text())
            assert data["decision"] == "block"
            assert "did not finish" in data["reasons"][0]
        """
    )
    result, report = run_and_parse("--env=staging")
    assert result.ret == 0
    assert report["decision"] == "promote"  # the new, finished run


def test_report_fields(pytester: pytest.Pytester, run_and_parse: RunAndParse) -> None:
    pytester.makefile(".toml", promotion=ROLLBACK)
    pytester.makepyfile(FAILING)
    _, report = run_and_parse("--env=staging", "--promotion-version=2.0.1")
    for key in (
        "decision",
        "environment",
        "version",
        "rollback_command",
        "reasons",
        "gates",
        "waivers",
    ):
        assert key in report
    assert report["version"] == "2.0.1"
    assert set(report["gates"][0]) >= {"id", "outcome", "measured", "threshold", "message"}
    assert report["gates"][0]["message"] == ["AssertionError: lint failed", "assert False"][0]


def test_unwritable_report_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "ro").mkdir()
    (pytester.path / "ro" / "decision.json").mkdir()  # a directory where the file should go
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--env=staging", "--promotion-report=ro/decision.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_github_actions_outputs_and_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, summary = pytester.path / "gh_output", pytester.path / "gh_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makefile(".toml", promotion=ROLLBACK)
    pytester.makepyfile(FAILING)
    pytester.runpytest("--env=staging")
    assert out.read_text().splitlines() == [
        "decision=block",
        "rollback-command=deploy rollback --env staging",
    ]
    text = summary.read_text()
    assert "### Promotion to `staging`: **block**" in text
    assert "| lint | - | - | FAIL |" in text
    assert "    deploy rollback --env staging" in text


def test_no_github_files_outside_actions(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = pytester.path / "gh_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    pytester.makepyfile(PASSING)
    pytester.runpytest("--env=staging")
    assert not out.exists()


def test_terminal_summary_folds_many_passing_rows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.dev
        @pytest.mark.parametrize("n", range(60))
        def test_many(n):
            assert n != 7, "seven is broken"
        """
    )
    result = pytester.runpytest("--env=staging")
    out = result.stdout.str()
    assert "test_many[7]" in out.split("promotion: staging")[1]
    assert "test_many[8]" not in out.split("promotion: staging")[1]
    result.stdout.fnmatch_lines(
        ["... and 59 more gates passed (-v shows every row; all are in the reports)"]
    )
    verbose = pytester.runpytest("--env=staging", "-v")
    assert "test_many[8]" in verbose.stdout.str().split("promotion: staging")[1]


def test_insecure_is_reported_everywhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_and_parse: RunAndParse
) -> None:
    summary = pytester.path / "gh_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makefile(".toml", promotion="[environments.staging]\ninsecure = true\n")
    pytester.makepyfile(PASSING)
    result, report = run_and_parse("--env=staging", "--junitxml=gate.xml")
    warning = "TLS verification is disabled for staging (insecure = true)"
    assert result.ret == 0
    assert f"promotion: WARNING: {warning}" in result.outlines
    assert f"warning: {warning}" in result.outlines
    assert report["warnings"] == [warning]
    assert suite_properties(pytester.path / "gate.xml")["promotion.warning.1"] == warning
    assert f"- warning: {warning}" in summary.read_text()
