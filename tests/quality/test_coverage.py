"""coverage: real ``coverage run`` data and ``coverage xml`` of a generated package, Go profiles."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from pytest_promotion.checks import CheckConfigError, coverage_check
from pytest_promotion.checks.base import Outcome, Target

from .conftest import DATA, python, write

PROJECT = {
    "pkg/__init__.py": "",
    # 6 statements, all run
    "pkg/core/__init__.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
    # 8 statements, 3 run (the def lines and the module)
    "pkg/extra.py": (
        "def unused(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n\n\n"
        "def also_unused():\n    x = 1\n    return x\n"
    ),
    "run.py": "from pkg.core import add, sub\nimport pkg.extra\n\nassert add(1, 2) - sub(2, 1) == 2\n",
}


def make_project(root: Path) -> None:
    write(root, PROJECT)
    python("-m", "coverage", "run", "--source=pkg", "run.py", cwd=root)
    python("-m", "coverage", "xml", "-o", "coverage.xml", cwd=root)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("covproject")
    make_project(root)
    return root


def check(root: Path, **spec: object) -> Outcome:
    spec.setdefault("coverage", ".coverage")
    coverage_check.validate(spec, "promotion.toml: [[environments.dev.checks]] 'cov'")
    return coverage_check.run(spec, Target(env="dev", rootdir=root))


@pytest.mark.integration
def test_coverage_data_above_threshold_passes(project: Path) -> None:
    outcome = check(project, min=50)
    # 12 statements: pkg/core 4 of 4, pkg/extra 2 of 8 (its def lines); exactly at the limit passes
    assert outcome.passed, outcome.message
    assert outcome.measured == 50.0
    assert outcome.threshold == ">= 50 %"
    assert outcome.unit == "%"
    assert outcome.message == "coverage 50.0 % >= 50 % (6 of 12 lines, .coverage)"
    assert outcome.rollback is None  # the kind default (block) applies: ROLLBACK is False
    assert coverage_check.ROLLBACK is False


@pytest.mark.integration
def test_coverage_data_below_default_threshold_fails(project: Path) -> None:
    outcome = check(project)
    assert not outcome.passed
    assert outcome.message == "coverage 50.0 % < 60 % (6 of 12 lines, .coverage)"
    assert outcome.threshold == ">= 60 %"


def test_per_path_minimum(project: Path) -> None:
    ok = check(project, min=50, paths={"pkg/core": 100})
    assert ok.passed, ok.message
    assert ok.threshold == ">= 50 %, pkg/core >= 100 %"
    bad = check(project, min=50, paths={"pkg/extra.py": 80})
    assert not bad.passed
    assert bad.message == "pkg/extra.py: coverage 25.0 % < 80 %"
    typo = check(project, min=50, paths={"pkg/cor": 10})
    assert not typo.passed
    assert typo.message == "pkg/cor: no measured lines in the report (check the path)"


def test_cobertura_from_coverage_xml(project: Path) -> None:
    outcome = check(project, coverage="coverage.xml", min=50, paths={"pkg/core": 100})
    assert outcome.passed, outcome.message
    assert outcome.measured == 50.0
    assert outcome.details["format"] == "cobertura"
    assert check(project, coverage="coverage.xml", min=60).message == (
        "coverage 50.0 % < 60 % (6 of 12 lines, coverage.xml)"
    )


def test_cobertura_without_root_counts_counts_lines(tmp_path: Path) -> None:
    xml = """<?xml version="1.0" ?>
<coverage line-rate="0.5"><sources><source>src</source></sources><packages><package name="a"><classes>
<class name="m" filename="m.py"><methods><method name="f"><lines><line number="1" hits="1"/></lines></method></methods>
<lines><line number="1" hits="1"/><line number="2" hits="0"/><line number="3" hits="4"/><line number="4" hits="0"/></lines></class>
</classes></package></packages></coverage>
"""
    (tmp_path / "cov.xml").write_text(xml)
    outcome = check(tmp_path, coverage="cov.xml", min=50)
    assert outcome.passed, outcome.message
    assert outcome.message == "coverage 50.0 % >= 50 % (2 of 4 lines, cov.xml)"


@pytest.mark.integration
def test_stale_report_fails(tmp_path: Path) -> None:
    make_project(tmp_path)
    assert check(tmp_path, min=10).passed
    later = time.time() + 120
    os.utime(tmp_path / "pkg/core/__init__.py", (later, later))
    for report in (".coverage", "coverage.xml"):
        outcome = check(tmp_path, coverage=report, min=10)
        assert not outcome.passed
        assert (
            f"coverage report {tmp_path / report} is stale: pkg/core/__init__.py changed 2.0 min after"
            in outcome.message
        )


def test_max_age(project: Path, tmp_path: Path) -> None:
    shutil.copy2(project / "coverage.xml", tmp_path / "coverage.xml")
    assert check(tmp_path, coverage="coverage.xml", min=10, max_age="1h").passed
    old = time.time() - 7200
    os.utime(tmp_path / "coverage.xml", (old, old))
    outcome = check(tmp_path, coverage="coverage.xml", min=10, max_age="1h")
    assert not outcome.passed
    assert "is stale: written 2.0 h ago (max_age 1.0 h)" in outcome.message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "not found (did the tests run with coverage?)"),
        ("", "is empty"),
        ("hello", "not a coverage.py data file, Cobertura XML or Go cover profile"),
        ("<coverage lines-valid='10'", "is not valid XML"),
        ('<coverage lines-valid="0" lines-covered="0"></coverage>', "measures 0 of 0 lines"),
        ("<html></html>", "expected Cobertura <coverage>, found <html>"),
        ("mode: set\n", "measures 0 of 0 lines"),
        ("mode: set\ngarbage\n", ":2: not a cover profile line"),
    ],
)
def test_no_data_fails_closed(tmp_path: Path, content: str | None, reason: str) -> None:
    if content is not None:
        (tmp_path / "report").write_text(content)
    outcome = check(tmp_path, coverage="report", min=0)
    assert not outcome.passed
    assert reason in outcome.message
    assert outcome.threshold == ">= 0 %"
    assert outcome.measured is None


@pytest.mark.integration
def test_coverage_data_with_missing_source_fails(tmp_path: Path) -> None:
    make_project(tmp_path)
    (tmp_path / "pkg/extra.py").unlink()
    outcome = check(tmp_path, min=0)
    assert not outcome.passed
    assert outcome.message.startswith(
        f"coverage data {tmp_path / '.coverage'} cannot be reported: No source for code"
    )


def test_go_profile(tmp_path: Path) -> None:
    shutil.copytree(DATA / "go" / "src", tmp_path, dirs_exist_ok=True)
    for name in ("cover.out", "coverpkg.out"):
        shutil.copy(DATA / "go" / name, tmp_path / name)
        outcome = check(tmp_path, coverage=name, min=40, paths={"parse": 100, "calc": 30})
        assert outcome.passed, outcome.message
        assert outcome.measured == 44.4
        assert outcome.message == f"coverage 44.4 % >= 40 % (4 of 9 lines, {name})"
        bad = check(tmp_path, coverage=name, min=40, paths={"calc": 50})
        assert bad.message == "calc: coverage 37.5 % < 50 %"


def test_format_mismatch_fails(project: Path) -> None:
    outcome = check(project, coverage="coverage.xml", format="go", min=0)
    assert not outcome.passed
    assert "expected a Go cover profile ('mode: set' first)" in outcome.message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"coverage": ""}, "key 'coverage': expected the path of a coverage report, found ''"),
        ({"coverage": "c", "min": 101}, "key 'min': expected a percent 0-100, found 101"),
        (
            {"coverage": "c", "paths": {"a": "x"}},
            "key 'paths': expected 'a' = a percent 0-100, found 'x'",
        ),
        ({"coverage": "c", "max_age": "soon"}, "key 'max_age': expected seconds or a duration"),
        (
            {"coverage": "c", "format": "lcov"},
            "key 'format': expected one of auto, coverage, cobertura, go, found 'lcov'",
        ),
    ],
)
def test_validate(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        coverage_check.validate(spec, "promotion.toml: [[environments.dev.checks]] 'cov'")
    assert str(info.value).startswith(
        "promotion.toml: [[environments.dev.checks]] 'cov': " + message
    )


def test_cobertura_root_totals_and_truncation(tmp_path: Path) -> None:
    xml = """<?xml version="1.0" ?>
<coverage line-rate="0.75" lines-valid="4" lines-covered="3"><sources><source>src</source></sources>
<packages><package name="a"><classes><class name="m" filename="m.py"><lines>
<line number="1" hits="1"/><line number="2" hits="1"/><line number="3" hits="1"/><line number="4" hits="0"/>
</lines></class></classes></package></packages></coverage>
"""
    (tmp_path / "cov.xml").write_text(xml)
    outcome = check(tmp_path, coverage="cov.xml", min=70)
    assert outcome.passed, outcome.message
    assert outcome.message == "coverage 75.0 % >= 70 % (3 of 4 lines, cov.xml)"
    # a tool killed mid-write leaves a report without its closing tag: never a pass
    (tmp_path / "cov.xml").write_text(xml[: xml.index("</classes>")])
    outcome = check(tmp_path, coverage="cov.xml", min=70)
    assert not outcome.passed
    assert "not valid XML" in outcome.message


def cobertura(lines: str, root: str = 'lines-valid="4" lines-covered="3" line-rate="0.75"') -> str:
    return (
        f'<?xml version="1.0" ?>\n<coverage {root}><sources><source>src</source></sources>\n'
        '<packages><package name="a"><classes><class name="m" filename="m.py"><methods/><lines>\n'
        f"{lines}\n</lines></class></classes></package></packages></coverage>\n"
    )


GOOD_LINES = (
    '<line number="1" hits="1"/><line number="2" hits="1"/>'
    '<line number="3" hits="1"/><line number="4" hits="0"/>'
)


@pytest.mark.parametrize("spec", [{}, {"max_age": "1h"}, {"paths": {"m.py": 10}}])
def test_cobertura_root_totals_do_not_vouch_for_a_corrupt_document(
    project: Path, tmp_path: Path, spec: dict[str, object]
) -> None:
    """Valid root totals, then garbage: the whole document must parse, on the fast path too."""
    (tmp_path / "corrupt.xml").write_text(
        '<?xml version="1.0" ?>\n<coverage lines-valid="100" lines-covered="95" line-rate="0.95">'
        "<packages><<<<garbage &&& not xml\n</coverage>\n"
    )
    outcome = check(tmp_path, coverage="corrupt.xml", min=80, **spec)
    assert not outcome.passed
    assert outcome.message == (
        f"coverage report {tmp_path / 'corrupt.xml'} is not valid XML: "
        "not well-formed (invalid token): line 2, column 75"
    )
    # the same with a report written by coverage.py, damaged in the middle
    real = (project / "coverage.xml").read_text()
    assert "<packages>" in real
    (tmp_path / "damaged.xml").write_text(real.replace("<packages>", "<packages><x></y>", 1))
    outcome = check(tmp_path, coverage="damaged.xml", min=10, **spec)
    assert not outcome.passed
    assert outcome.message.startswith(
        f"coverage report {tmp_path / 'damaged.xml'} is not valid XML: mismatched tag: line "
    )


@pytest.mark.parametrize(
    ("root", "what"),
    [
        ('lines-valid="10" lines-covered="500"', "lines-covered=500 is more than lines-valid=10"),
        (
            'lines-valid="4" lines-covered="3" line-rate="1.5"',
            "line-rate='1.5', expected a fraction 0-1",
        ),
        ('lines-valid="4" lines-covered="-3"', "lines-covered='-3', expected a count"),
        ('lines-valid="four" lines-covered="3"', "lines-valid='four', expected a count"),
        ('line-rate="nan"', "line-rate='nan', expected a fraction 0-1"),
    ],
)
@pytest.mark.parametrize("paths", [{}, {"paths": {"m.py": 10}}])
def test_cobertura_impossible_root_totals_fail(
    tmp_path: Path, root: str, what: str, paths: dict[str, object]
) -> None:
    (tmp_path / "cov.xml").write_text(cobertura(GOOD_LINES, root))
    outcome = check(tmp_path, coverage="cov.xml", min=50, **paths)
    assert not outcome.passed
    assert outcome.message == f"coverage report {tmp_path / 'cov.xml'}: malformed Cobertura: {what}"


@pytest.mark.parametrize("root", ["", 'lines-valid="3" lines-covered="3"'])
def test_cobertura_hits_must_be_an_integer(tmp_path: Path, root: str) -> None:
    lines = '<line number="1" hits="1"/>\n<line number="2" hits="-3"/><line number="3" hits="abc"/>'
    (tmp_path / "cov.xml").write_text(cobertura(lines, root))
    for spec in ({}, {"paths": {"m.py": 10}}):
        outcome = check(tmp_path, coverage="cov.xml", min=10, **spec)
        assert not outcome.passed
        assert outcome.message == (
            f"coverage report {tmp_path / 'cov.xml'}: malformed Cobertura: "
            "line 5: hits='abc', expected an integer"
        )


def test_cobertura_only_positive_hits_are_covered(tmp_path: Path) -> None:
    lines = '<line number="1" hits="1"/><line number="2" hits="-3"/><line number="3" hits="0"/>'
    (tmp_path / "cov.xml").write_text(cobertura(lines + '<line number="4" hits="07"/>', ""))
    outcome = check(tmp_path, coverage="cov.xml", min=50)
    assert outcome.passed, outcome.message
    assert outcome.message == "coverage 50.0 % >= 50 % (2 of 4 lines, cov.xml)"
    assert not check(tmp_path, coverage="cov.xml", min=51).passed
    # the root says 2 of 2, but line 2 states no hits: not covered, and the root is contradicted
    lines = '<line number="1" hits="1"/><line number="2"/>'
    (tmp_path / "cov.xml").write_text(cobertura(lines, 'lines-valid="2" lines-covered="2"'))
    outcome = check(tmp_path, coverage="cov.xml", min=50, paths={"m.py": 80})
    assert not outcome.passed
    assert outcome.message == (
        f"coverage report {tmp_path / 'cov.xml'}: malformed Cobertura: the root states 2 of 2 "
        "lines covered, its <line> elements 1 of 2"
    )


ALL_MISSED = "".join(f'<line number="{n}" hits="0"/>' for n in range(1, 11))


@pytest.mark.parametrize("spec", [{}, {"max_age": "1h"}, {"paths": {"m.py": 50}}])
@pytest.mark.parametrize(
    ("lines", "root", "what"),
    [
        # root totals the lines contradict: fast path (byte counts) and parser path alike
        (
            ALL_MISSED,
            'lines-valid="10" lines-covered="10"',
            "the root states 10 of 10 lines covered, its <line> elements 0 of 10",
        ),
        (
            ALL_MISSED + "<!-- a comment sends it through the parser -->",
            'lines-valid="10" lines-covered="10"',
            "the root states 10 of 10 lines covered, its <line> elements 0 of 10",
        ),
        # a line-rate that is not lines-covered / lines-valid
        (
            ALL_MISSED,
            'lines-valid="10" lines-covered="0" line-rate="1.0"',
            "line-rate='1.0' does not match lines-covered/lines-valid = 0/10",
        ),
    ],
)
def test_cobertura_root_totals_must_agree_with_the_lines(
    tmp_path: Path, spec: dict[str, object], lines: str, root: str, what: str
) -> None:
    (tmp_path / "cov.xml").write_text(cobertura(lines, root))
    outcome = check(tmp_path, coverage="cov.xml", min=80, **spec)
    assert not outcome.passed
    assert outcome.message == f"coverage report {tmp_path / 'cov.xml'}: malformed Cobertura: {what}"


@pytest.mark.parametrize("rate", ["0.6667", "0.67", "0.7"])
def test_cobertura_line_rate_rounded_is_accepted(tmp_path: Path, rate: str) -> None:
    lines = '<line number="1" hits="1"/><line number="2" hits="1"/><line number="3" hits="0"/>'
    (tmp_path / "cov.xml").write_text(
        cobertura(lines, f'lines-valid="3" lines-covered="2" line-rate="{rate}"')
    )
    outcome = check(tmp_path, coverage="cov.xml", min=60)
    assert outcome.passed, outcome.message
    assert outcome.message == "coverage 66.7 % >= 60 % (2 of 3 lines, cov.xml)"


def test_cobertura_fast_path_reads_what_expat_reads(tmp_path: Path) -> None:
    """Markup the byte scans would misread sends the report through the parser."""
    hidden = '<!-- <line number="9" hits="1"/> --><line number="2" hits="0"/>'
    for lines in (
        '<line number="1" hits="1"/>' + hidden,
        '<line number="1" hits="1"/><![CDATA[<line number="9" hits="1"/>]]>'
        '<line number="2" hits="0"/>',
        "<line number=\"1\" hits='1'/><line number=\"2\" hits='0'/>",
    ):
        (tmp_path / "cov.xml").write_text(cobertura(lines, 'lines-valid="2" lines-covered="1"'))
        outcome = check(tmp_path, coverage="cov.xml", min=50, paths={"m.py": 60})
        assert outcome.message == "m.py: coverage 50.0 % < 60 %", lines


def test_report_modified_in_the_future_fails(project: Path, tmp_path: Path) -> None:
    shutil.copy2(project / "coverage.xml", tmp_path / "coverage.xml")
    ahead = time.time() + 3 * 3600
    os.utime(tmp_path / "coverage.xml", (ahead, ahead))
    for spec in ({"max_age": "1h"}, {}):
        outcome = check(tmp_path, coverage="coverage.xml", min=10, **spec)
        assert not outcome.passed
        assert re.fullmatch(
            rf"coverage report {re.escape(str(tmp_path / 'coverage.xml'))} is modified in the "
            r"future \((2\.9|3\.0) h ahead of this machine's clock\): clock skew\?",
            outcome.message,
        ), outcome.message
