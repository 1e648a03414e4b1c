"""The quality kinds through promotion.toml: key validation, decision and rollback flag."""

from __future__ import annotations

import shutil

import pytest

from tests.reports import RunAndParse

from .conftest import DATA


def test_quality_checks_from_promotion_toml(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    shutil.copy(DATA / "sarif" / "semgrep.sarif", pytester.path)
    pytester.makefile(
        ".toml",
        promotion="""
[environments.dev]
rollback = "undo {env}"

[[environments.dev.checks]]
name = "lint"
command = ["{python}", "-c", "print('fine')"]

[[environments.dev.checks]]
name = "coverage"
coverage = "coverage.xml"
min = 80
paths = { "pkg/core" = 90 }
max_age = "1h"

[[environments.dev.checks]]
name = "semgrep"
sarif = "semgrep.sarif"
max_high = 5
""",
    )
    result, report = run_and_parse("--env=dev", "-v")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*dev::lint PASSED*"])
    gates = {g["id"]: g for g in report["gates"]}
    assert gates["dev::lint"]["outcome"] == "passed"
    assert gates["dev::coverage"]["outcome"] == "failed"
    assert "not found" in gates["dev::coverage"]["message"]
    assert gates["dev::semgrep"]["measured"] == "high=1 critical=1"
    # a critical finding is a rollback trigger
    assert report["decision"] == "rollback"
    assert report["rollback_command"] == "undo dev"


def test_unknown_key_names_the_check(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion='[[environments.dev.checks]]\nname = "cov"\ncoverage = "c.xml"\nminimum = 80\n',
    )
    result = pytester.runpytest("--env=dev")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*unknown key 'minimum' for a coverage check*"])
