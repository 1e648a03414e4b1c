"""Issue 17: the JUnit form of a gate's facts. A case that did not pass carries
``promotion.gate`` and ``promotion.trigger`` (and what it measured); the passing gates'
facts are in the suite property ``promotion.passed``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

SUITE = """
import pytest
pytestmark = pytest.mark.dev

@pytest.mark.parametrize("n", range(3))
def test_gate(n):
    assert n != 1

def test_skipped():
    pytest.skip("not today")

@pytest.mark.gate(name="coverage", trigger="rollback")
def test_measured(gate):
    gate.measure(72.5, min=60, unit="%")

def test_waived():
    assert False, "lint failed"
"""


def _cases(root: ET.Element) -> dict[str, dict[str, str]]:
    return {
        case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        for case in root.iter("testcase")
    }


def test_every_gate_keeps_its_facts_in_junit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_g=SUITE)
    result = pytester.runpytest(
        "--env=staging", "--junitxml=gate.xml", "--waive", "test_g.py::test_waived=JIRA-1"
    )
    assert result.ret == 1  # test_gate[1] failed: block
    root = ET.parse(pytester.path / "gate.xml").getroot()
    cases = _cases(root)
    # Failed, skipped, waived: per case, as before.
    for name in ("test_gate[1]", "test_skipped", "test_waived"):
        assert cases[name]["promotion.gate"] == f"test_g.py::{name}"
        assert cases[name]["promotion.trigger"] == "block"
    # A passing gate that says more than its id keeps its case properties too.
    assert cases["test_measured"]["promotion.gate"] == "coverage"
    assert cases["test_measured"]["promotion.trigger"] == "rollback"
    assert cases["test_measured"]["promotion.measured"] == "72.5 %"
    # A plain passing gate: none on the case, its facts in the suite property.
    assert cases["test_gate[0]"] == {}
    suite = {p.get("name"): p.get("value") for p in root.find("testsuite/properties") or []}
    passed = {g["id"]: g for g in json.loads(suite["promotion.passed"] or "")}
    assert set(passed) == {
        "test_g.py::test_gate[0]",
        "test_g.py::test_gate[2]",
        "test_g.py::test_measured",
    }
    assert passed["test_g.py::test_gate[0]"] == {
        "id": "test_g.py::test_gate[0]",
        "gate": "test_g.py::test_gate[0]",
        "trigger": "block",
        "measured": None,
        "threshold": None,
    }
    assert passed["test_g.py::test_measured"]["threshold"] == ">= 60 %"
    assert passed["test_g.py::test_measured"]["trigger"] == "rollback"


def test_a_secret_in_a_gate_id_is_masked_in_both_forms(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cr3t-value-123")
    pytester.makefile(
        ".toml",
        promotion='[environments.staging]\nvars = { api_token = "${API_TOKEN}" }\n',
    )
    pytester.makepyfile(
        test_g="""
        import pytest
        pytestmark = pytest.mark.dev

        @pytest.mark.parametrize("t", ["s3cr3t-value-123"])
        def test_ok(t):
            pass

        @pytest.mark.parametrize("t", ["s3cr3t-value-123"])
        def test_bad(t):
            assert False
        """
    )
    pytester.runpytest("--env=staging", "--junitxml=gate.xml")
    xml = (pytester.path / "gate.xml").read_text()
    assert 'name="promotion.gate" value="test_g.py::test_bad[***]"' in xml
    assert "test_g.py::test_ok[***]" in xml
    assert xml.count("s3cr3t-value-123") == 2  # pytest's own case names only
