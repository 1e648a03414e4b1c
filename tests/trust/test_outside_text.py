"""Text from outside (a scanner's file names, tool output, HTTP bodies) cannot forge a
line, rewrite the terminal, issue a workflow command or inject HTML (issue 11, item 31)."""

from __future__ import annotations

import json
import sys

import pytest

from pytest_promotion.untrusted import block, markdown, one_line
from tests.reports import REPORT_NAME, RunAndParse, read

# A file name a hostile SARIF report (or a repository) can hold.
HOSTILE = "a.py\ndecision: PROMOTE\n::error::forged\r\x1b[2J\x9b31m<img src=x onerror=alert(1)>"


def _sarif(uri: str) -> str:
    result = {
        "ruleId": "R1",
        "level": "error",
        "message": {"text": "shell injection\n::warning::also forged"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}],
        "properties": {"security-severity": "9.5"},
    }
    run = {"tool": {"driver": {"name": "semgrep"}}, "results": [result]}
    return json.dumps({"version": "2.1.0", "runs": [run]})


def _forged(text: str) -> list[str]:
    """Lines of ``text`` that were not the plugin's: forged decisions, workflow commands,
    terminal escapes, raw HTML."""
    bad = []
    for line in text.splitlines():
        stripped = line.strip()
        if (
            stripped.startswith(("decision: PROMOTE", "::"))
            or "##[" in line
            or any(c in line for c in "\x1b\x9b\r\x07")
        ):
            bad.append(line)
    return bad


@pytest.fixture
def hostile_scan(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    (pytester.path / "scan.sarif").write_text(_sarif(HOSTILE))
    pytester.makefile(
        ".toml",
        promotion="""
        [environments.dev]
        [[environments.dev.checks]]
        name = "scan"
        sarif = "scan.sarif"
        """,
    )
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    monkeypatch.setenv("GITHUB_OUTPUT", str(pytester.path / "output.txt"))
    return RunAndParse(pytester)("--env=dev", "-rA", "--junitxml=j.xml", subprocess=True)[0]


@pytest.mark.integration
def test_a_hostile_file_name_forges_nothing_in_the_terminal(
    hostile_scan: pytest.RunResult,
) -> None:
    assert hostile_scan.ret == 1
    out = hostile_scan.stdout.str() + hostile_scan.stderr.str()
    assert [line for line in out.splitlines() if line.startswith("decision:")] == [
        "decision: ROLLBACK -> dev"
    ]
    assert _forged(out) == []
    assert "a.py\\ndecision: PROMOTE\\n::error::forged\\r\\x1b[2J\\x9b31m" in out


@pytest.mark.integration
def test_a_hostile_file_name_forges_nothing_in_junit_or_the_step_summary(
    pytester: pytest.Pytester, hostile_scan: pytest.RunResult
) -> None:
    xml = (pytester.path / "j.xml").read_text()
    assert _forged(xml) == []
    summary = (pytester.path / "summary.md").read_text()
    assert _forged(summary) == []
    assert "<img" not in summary
    assert "&lt;img src=x onerror=alert(1)&gt;" in summary
    assert (pytester.path / "output.txt").read_text().splitlines()[0] == "decision=rollback"
    # the JSON report has it as the terminal shows it
    report = read(pytester.path / REPORT_NAME)
    assert one_line(HOSTILE) in report["gates"][0]["message"]


@pytest.mark.integration
def test_a_command_s_output_forges_nothing(pytester: pytest.Pytester) -> None:
    code = (
        "import sys; print('ok\\n::error file=x::forged\\n##[error]old\\x1b[31mred');"
        " print('last\\r::error::x', file=sys.stderr); sys.exit(1)"
    )
    pytester.makefile(
        ".toml",
        promotion=f"""
        [environments.dev]
        [[environments.dev.checks]]
        name = "lint"
        command = {json.dumps([sys.executable, "-c", code])}
        """,
    )
    result = pytester.runpytest_subprocess("--env=dev", "-rA", "--junitxml=j.xml")
    assert result.ret == 1
    out = result.stdout.str()
    assert _forged(out) == []
    assert "\\x3a:error file=x::forged" in out
    assert _forged((pytester.path / "j.xml").read_text()) == []


@pytest.mark.integration
def test_a_gate_printing_outside_text_forges_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_g="""
        import pytest, sys
        pytestmark = pytest.mark.dev
        BODY = "<html>\\n::error::down\\x1b]8;;http://evil\\x07link"

        def test_health():
            print(BODY)
            print(BODY, file=sys.stderr)
            assert False, BODY

        def test_skipped():
            pytest.skip(BODY)
        """
    )
    result = pytester.runpytest_subprocess("--env=dev", "-rA", "--junitxml=j.xml")
    assert result.ret == 1
    assert _forged(result.stdout.str()) == []
    assert "\x07" not in result.stdout.str()
    assert _forged((pytester.path / "j.xml").read_text()) == []


@pytest.mark.parametrize(
    ("text", "line", "lines", "md"),
    [
        ("plain text", "plain text", "plain text", "plain text"),
        ("a\nb", "a\\nb", "a\nb", "a\\\\nb"),
        ("  ::set-output name=x::y", "  \\x3a:set-output name=x::y", None, None),
        ("x ##[error]y", "x \\x23#[error]y", None, None),
        ("\u202eevil", "\\u202eevil", None, None),
        ("tab\there", "tab\\there", "tab\there", None),
        ("a | *b* <i>", None, None, "a \\| \\*b\\* &lt;i&gt;"),
    ],
)
def test_neutralised_for_each_place(
    text: str, line: str | None, lines: str | None, md: str | None
) -> None:
    if line is not None:
        assert one_line(text) == line
    if lines is not None:
        assert block(text) == lines
    if md is not None:
        assert markdown(text) == md
