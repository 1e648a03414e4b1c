"""bandit (run for real on generated code) and SARIF files (samples in tests/data/sarif)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_promotion.checks import CheckConfigError, security
from pytest_promotion.checks.base import Outcome, Target

from .conftest import DATA, write

RISKY = "import subprocess\n\n\ndef go(x):\n    subprocess.call(x, shell=True)\n"
HIDDEN = "import subprocess\n\n\ndef quiet(x):\n    subprocess.call(x, shell=True)  # nosec\n"
WHERE = "promotion.toml: [[environments.dev.checks]] 'sec'"


def check(root: Path, **spec: object) -> Outcome:
    security.validate(spec, WHERE)
    return security.run(spec, Target(env="dev", rootdir=root))


@pytest.mark.integration
def test_clean_code_passes(tmp_path: Path) -> None:
    write(tmp_path, {"app/ok.py": "def f(a):\n    return a + 1\n"})
    outcome = check(tmp_path, bandit=["app"])
    assert outcome.passed, outcome.message
    assert outcome.measured == "high=0 critical=0"
    assert outcome.threshold == "high<=5 critical<=0"
    assert outcome.message == "high=0 critical=0 within limits (bandit, 2 lines in app)"


@pytest.mark.integration
def test_shell_true_is_high_and_over_limit_blocks(tmp_path: Path) -> None:
    write(tmp_path, {"app/run.py": RISKY})
    outcome = check(tmp_path, bandit=["app"], max_high=0)
    assert not outcome.passed
    assert outcome.measured == "high=1 critical=0"
    assert outcome.threshold == "high<=0 critical<=0"
    assert outcome.message == "1 high > max_high 0: B602 at app/run.py:5 (high)"
    assert outcome.rollback is None  # bandit has no critical: a block, not a rollback
    assert check(tmp_path, bandit=["app"]).passed  # default max_high = 5


@pytest.mark.integration
def test_nosec_finding_still_counts(tmp_path: Path) -> None:
    write(tmp_path, {"app/run.py": RISKY, "app/quiet.py": HIDDEN})
    outcome = check(tmp_path, bandit="app", max_high=1)
    assert not outcome.passed
    assert outcome.measured == "high=2 critical=0"
    assert (
        outcome.message
        == "2 high > max_high 1: B602 at app/quiet.py:5 (high), B602 at app/run.py:5 (high)"
    )


@pytest.mark.integration
def test_project_bandit_ini_cannot_skip_tests(tmp_path: Path) -> None:
    write(tmp_path, {"app/run.py": RISKY, "app/.bandit": "[bandit]\nskips = B602,B404\n"})
    outcome = check(tmp_path, bandit=["app"], max_high=0)
    assert not outcome.passed
    assert "B602 at app/run.py:5" in outcome.message


@pytest.mark.integration
def test_baseline_with_reason_accepts_a_finding(tmp_path: Path) -> None:
    write(tmp_path, {"app/run.py": RISKY, "app/quiet.py": HIDDEN})
    baseline = [
        {
            "rule": "B602",
            "file": "app/quiet.py",
            "line": 5,
            "reason": "input is a constant, see #12",
        }
    ]
    (tmp_path / "security-baseline.json").write_text(json.dumps(baseline))
    outcome = check(tmp_path, bandit=["app"], max_high=1, baseline="security-baseline.json")
    assert outcome.passed, outcome.message
    assert outcome.measured == "high=1 critical=0"
    assert outcome.details["baselined"] == 1


def test_baseline_line_must_be_a_number(tmp_path: Path) -> None:
    # "41" (quoted) used to mean "no line": the rule accepted anywhere in the file.
    (tmp_path / "m.sarif").write_text(json.dumps(_sarif(_run())))
    baseline = [{"rule": "B602", "file": "app/run.py", "line": "41", "reason": "constant argv"}]
    (tmp_path / "b.json").write_text(json.dumps(baseline))
    outcome = check(tmp_path, sarif="m.sarif", baseline="b.json")
    assert not outcome.passed
    assert outcome.message == (
        f"security baseline {tmp_path / 'b.json'}: entry #1 (B602 in app/run.py): 'line' is "
        "'41', expected a line number (or no 'line' for the whole file)"
    )


@pytest.mark.integration
def test_baseline_without_reason_fails(tmp_path: Path) -> None:
    write(tmp_path, {"app/run.py": RISKY})
    (tmp_path / "b.json").write_text(json.dumps([{"rule": "B602", "file": "app/run.py"}]))
    outcome = check(tmp_path, bandit=["app"], baseline="b.json")
    assert not outcome.passed
    assert (
        outcome.message
        == f"security baseline {tmp_path / 'b.json'}: entry #1 (B602 in app/run.py) has no reason"
    )


@pytest.mark.integration
def test_syntax_error_fails_closed(tmp_path: Path) -> None:
    write(tmp_path, {"app/ok.py": "x = 1\n", "app/bad.py": "def broken(:\n"})
    outcome = check(tmp_path, bandit=["app"])
    assert not outcome.passed
    assert (
        outcome.message
        == "bandit could not scan 1 file(s): app/bad.py: syntax error while parsing AST from file"
    )


@pytest.mark.integration
def test_missing_path_and_empty_scan_fail_closed(tmp_path: Path) -> None:
    outcome = check(tmp_path, bandit=["nope"])
    assert not outcome.passed
    assert outcome.message == "bandit could not scan 1 file(s): nope: No such file or directory"
    write(tmp_path, {"empty/__init__.py": ""})
    outcome = check(tmp_path, bandit=["empty"])
    assert not outcome.passed
    assert outcome.message == "bandit scanned 0 lines of code in empty: check the paths"


def test_report_written_by_ci(tmp_path: Path) -> None:
    report = {
        "errors": [],
        "metrics": {"_totals": {"loc": 10, "nosec": 0, "skipped_tests": 0}},
        "results": [
            {
                "test_id": "B602",
                "filename": "./a.py",
                "line_number": 3,
                "issue_severity": "HIGH",
                "issue_confidence": "HIGH",
            },
            {
                "test_id": "B105",
                "filename": "./b.py",
                "line_number": 1,
                "issue_severity": "LOW",
                "issue_confidence": "MEDIUM",
            },
            {
                "test_id": "B303",
                "filename": "./c.py",
                "line_number": 2,
                "issue_severity": "HIGH",
                "issue_confidence": "MEDIUM",
            },
        ],
    }
    (tmp_path / "bandit.json").write_text(json.dumps(report))
    outcome = check(tmp_path, bandit=["src"], report="bandit.json", max_high=0, max_medium=0)
    assert outcome.measured == "high=1 critical=0 medium=1"
    assert outcome.threshold == "high<=0 critical<=0 medium<=0"
    assert (
        outcome.message
        == "1 high > max_high 0, 1 medium > max_medium 0: B602 at a.py:3 (high), B303 at c.py:2 (medium)"
    )
    report["metrics"]["_totals"]["nosec"] = 2  # type: ignore[index]
    (tmp_path / "bandit.json").write_text(json.dumps(report))
    hidden = check(tmp_path, bandit=["src"], report="bandit.json")
    assert not hidden.passed
    assert hidden.message.startswith(
        "bandit report bandit.json hides 2 finding(s) behind # nosec; rerun bandit with --ignore-nosec"
    )


def test_sarif_gosec_levels_and_suppressed_results(tmp_path: Path) -> None:
    shutil.copy(DATA / "sarif" / "gosec.sarif", tmp_path)
    outcome = check(tmp_path, sarif="gosec.sarif", max_high=1, max_medium=5)
    assert not outcome.passed
    assert outcome.measured == "high=2 critical=0 medium=1"
    assert outcome.message == (
        "2 high > max_high 1: G402 at cmd/probe/main.go:17 (high), G402 at internal/client/client.go:42 (high)"
    )
    assert outcome.rollback is None


def test_sarif_semgrep_critical_is_a_rollback(tmp_path: Path) -> None:
    shutil.copy(DATA / "sarif" / "semgrep.sarif", tmp_path)
    outcome = check(tmp_path, sarif="semgrep.sarif")
    assert not outcome.passed
    assert outcome.rollback is True
    # absent results are fixed: 1 critical, 1 high (unchanged still counts), 1 low
    assert outcome.measured == "high=1 critical=1"
    assert (
        outcome.message
        == "1 critical > max_critical 0: python.lang.security.audit.dangerous-system-call at app/admin.py:12 (critical)"
    )
    assert outcome.details["counts"] == {"critical": 1, "high": 1, "medium": 0, "low": 1}
    (tmp_path / "b.json").write_text(
        json.dumps(
            [
                {
                    "rule": "python.lang.security.audit.dangerous-system-call",
                    "file": "app/admin.py",
                    "reason": "admin-only",
                }
            ]
        )
    )
    assert check(tmp_path, sarif="semgrep.sarif", baseline="b.json").passed


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no-runs.sarif", "has no runs: the scanner produced no results"),
        ("no-results.sarif", ": trivy has no 'results' (the scan did not complete)"),
        (
            "failed-run.sarif",
            ": CodeQL reports a failed run: database finalize failed: no source code seen",
        ),
        ("missing.sarif", "not found"),
    ],
)
def test_sarif_fails_closed(tmp_path: Path, name: str, message: str) -> None:
    if (DATA / "sarif" / name).exists():
        shutil.copy(DATA / "sarif" / name, tmp_path)
    outcome = check(tmp_path, sarif=name)
    assert not outcome.passed
    assert outcome.message.startswith(f"SARIF file {tmp_path / name}")
    assert outcome.message.endswith(message)


def test_sarif_invalid_json_and_version(tmp_path: Path) -> None:
    (tmp_path / "a.sarif").write_text("{not json")
    assert "is not valid JSON" in check(tmp_path, sarif="a.sarif").message
    (tmp_path / "b.sarif").write_text('{"version": "2.0.0", "runs": []}')
    assert check(tmp_path, sarif="b.sarif").message.endswith(
        "expected version 2.1.0, found '2.0.0'"
    )


def test_sarif_clean(tmp_path: Path) -> None:
    shutil.copy(DATA / "sarif" / "clean.sarif", tmp_path)
    outcome = check(tmp_path, sarif="clean.sarif")
    assert outcome.passed
    assert outcome.message == "high=0 critical=0 within limits (trivy, clean.sarif)"


def test_many_findings_are_summarised(tmp_path: Path) -> None:
    results = [
        {
            "ruleId": f"R{i}",
            "level": "error",
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f"f{i}.go"},
                        "region": {"startLine": i},
                    }
                }
            ],
        }
        for i in range(1, 8)
    ]
    (tmp_path / "r.sarif").write_text(
        json.dumps(
            {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": results}]}
        )
    )
    outcome = check(tmp_path, sarif="r.sarif")
    assert (
        outcome.message
        == "7 high > max_high 5: R1 at f1.go:1 (high), R2 at f2.go:2 (high), R3 at f3.go:3 (high) and 4 more"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"bandit": []}, "key 'bandit': expected a list of paths to scan, found []"),
        (
            {"sarif": "x", "report": "r.json"},
            "key 'report': only for a bandit check, found 'r.json'",
        ),
        ({"bandit": ["a"], "max_high": -1}, "key 'max_high': expected >= 0, found -1"),
    ],
)
def test_validate(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        security.validate(spec, WHERE)
    assert str(info.value) == f"{WHERE}: {message}"


def _sarif(run: object) -> dict[str, object]:
    return {"version": "2.1.0", "runs": [run]}


def _run(*results: object, **extra: object) -> dict[str, object]:
    return {"tool": {"driver": {"name": "semgrep"}}, "results": list(results), **extra}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_sarif(None), "runs[0] is null, expected an object"),
        (
            _sarif(_run({"ruleId": "x", "level": "error", "message": "shell injection"})),
            "runs[0].results[0].message is a string, expected an object",
        ),
        (
            _sarif(_run({"ruleId": "x", "locations": ["src/a.py"]})),
            "runs[0].results[0].locations[0] is a string, expected an object",
        ),
        (
            _sarif(_run({"ruleId": "x", "locations": [{"physicalLocation": 3}]})),
            "runs[0].results[0].locations[0].physicalLocation is 3, expected an object",
        ),
        (_sarif(_run("x")), "runs[0].results[0] is a string, expected an object"),
        (
            _sarif(_run({"ruleId": "x", "rule": "x"})),
            "runs[0].results[0].rule is a string, expected an object",
        ),
        (
            _sarif({"tool": {"driver": {"name": "t", "rules": [True]}}, "results": []}),
            "runs[0].tool.driver.rules[0] is true, expected an object",
        ),
        (
            _sarif(
                _run(
                    invocations=[
                        {"executionSuccessful": False, "toolExecutionNotifications": "boom"}
                    ]
                )
            ),
            "runs[0].invocations[0].toolExecutionNotifications is a string, expected an array",
        ),
        (
            _sarif({"tool": "semgrep", "results": []}),
            "runs[0].tool is a string, expected an object",
        ),
        # a score that is not a number: falling back to the level would rate it medium
        (
            _sarif(
                _run(
                    {
                        "ruleId": "x",
                        "level": "warning",
                        "properties": {"security-severity": "critical"},
                    }
                )
            ),
            "runs[0].results[0]: security-severity is a string, expected a score 0-10",
        ),
        # the string "false" is not false: the failed run would have passed unnoticed
        (
            _sarif(_run(invocations=[{"executionSuccessful": "false"}])),
            "runs[0].invocations[0].executionSuccessful is a string, expected a boolean",
        ),
    ],
)
def test_sarif_malformed_fails_closed_on_one_line(
    tmp_path: Path, data: object, message: str
) -> None:
    (tmp_path / "m.sarif").write_text(json.dumps(data))
    outcome = check(tmp_path, sarif="m.sarif")
    assert not outcome.passed
    assert outcome.message == f"SARIF file {tmp_path / 'm.sarif'}: malformed: {message}"
    assert outcome.threshold == "high<=5 critical<=0"


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (
            {"results": [], "errors": [], "metrics": {"_totals": {"loc": 10, "nosec": "n/a"}}},
            "metrics._totals.nosec is 'n/a', expected a count",
        ),
        (
            {"results": [], "errors": [], "metrics": {"_totals": {"loc": 10, "skipped_tests": -2}}},
            "metrics._totals.skipped_tests is -2, expected a count",
        ),
        (
            {"results": ["B602"], "errors": [], "metrics": {"_totals": {"loc": 10}}},
            "results[0] is not an object",
        ),
        ({"results": [], "errors": [], "metrics": []}, "no 'metrics._totals' object"),
        ({"results": [], "errors": {"a.py": "boom"}}, "'errors' is not a list"),
    ],
)
def test_bandit_report_malformed_fails_closed(
    tmp_path: Path, report: dict[str, object], message: str
) -> None:
    (tmp_path / "bandit.json").write_text(json.dumps(report))
    outcome = check(tmp_path, bandit=["src"], report="bandit.json")
    assert not outcome.passed
    assert outcome.message == f"bandit report bandit.json: malformed: {message}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"bandit": ["--skip=B602", "app"]},
            "key 'bandit': expected a path, found the option '--skip=B602' "
            "(write './--skip=B602' for a path that starts with '-')",
        ),
        (
            {"bandit": "-r"},
            "key 'bandit': expected a path, found the option '-r' "
            "(write './-r' for a path that starts with '-')",
        ),
        (
            {"bandit": ["app"], "exclude": ["tests", "-sB602"]},
            "key 'exclude': expected a path, found the option '-sB602' "
            "(write './-sB602' for a path that starts with '-')",
        ),
        (
            {"bandit": ["app"], "exclude": [""]},
            "key 'exclude': expected a list of paths, found ['']",
        ),
    ],
)
def test_validate_refuses_options_in_paths(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        security.validate(spec, WHERE)
    assert str(info.value) == f"{WHERE}: {message}"


@pytest.mark.integration
def test_paths_reach_bandit_as_paths_never_as_options(tmp_path: Path) -> None:
    """Even unvalidated, '--skip=B602' is a (missing) path for bandit, not its --skip option."""
    write(tmp_path, {"app/run.py": RISKY, "-odd/run.py": RISKY})
    spec = {"bandit": ["--skip=B602", "app"], "max_high": 0}
    outcome = security.run(spec, Target(env="dev", rootdir=tmp_path))
    assert not outcome.passed
    assert outcome.message == (
        "bandit could not scan 1 file(s): --skip=B602: No such file or directory"
    )
    outcome = check(tmp_path, bandit=["./-odd", "app"], max_high=0)
    assert outcome.message == (
        "2 high > max_high 0: B602 at -odd/run.py:5 (high), B602 at app/run.py:5 (high)"
    )
