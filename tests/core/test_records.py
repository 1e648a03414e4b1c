"""pytest reports -> per-gate records: a later report never hides an earlier failure."""

from __future__ import annotations

import pytest

from pytest_promotion.decision import FAILED, SKIPPED
from pytest_promotion.records import update_record


def gates_of(report: dict) -> dict[str, dict]:
    return {g["id"].split("::")[-1]: g for g in report["gates"]}


def test_a_failed_subtest_fails_its_gate(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        def test_gate(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    assert i != 1, "subtest 1 failed"
        """
    )
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    assert result.ret == 1
    report = read_report()
    assert report["decision"] == "block"
    gate = gates_of(report)["test_gate"]
    assert gate["outcome"] == "failed"
    assert gate["message"] == "AssertionError: subtest 1 failed"
    result.stdout.fnmatch_lines(["*test_gate*FAIL*", "decision: BLOCK*"])


def test_a_failed_unittest_subtest_fails_its_gate(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import unittest
        import pytest
        @pytest.mark.dev
        class Gates(unittest.TestCase):
            def test_gate(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertNotEqual(i, 1)
        """
    )
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    assert result.ret == 1
    report = read_report()
    assert report["decision"] == "block"
    gate = gates_of(report)["test_gate"]
    assert gate["outcome"] == "failed"
    assert gate["message"] == "AssertionError: 1 == 1"


def test_a_skipped_subtest_is_a_skipped_gate(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        def test_gate(subtests):
            with subtests.test("optional"):
                pytest.skip("no data for the optional part")
            with subtests.test("main"):
                pass
        """
    )
    result = pytester.runpytest(
        "--promotion-config=none", "--env=prod", "--promotion-report=decision.json"
    )
    assert result.ret == 1
    report = read_report()
    assert gates_of(report)["test_gate"]["outcome"] == "skipped"
    assert report["decision"] == "block"
    assert "forbids skips" in report["reasons"][0]


def _report(outcome: str, when: str = "call", message: str = "") -> pytest.TestReport:
    longrepr = None
    if outcome == "skipped":
        longrepr = ("test_x.py", 1, f"Skipped: {message}")
    elif outcome != "passed":
        longrepr = f"E   AssertionError: {message}"
    return pytest.TestReport(
        "test_x.py::test_g", ("test_x.py", 1, "test_g"), {}, outcome, longrepr, when
    )


def test_a_pass_after_a_failure_does_not_hide_it() -> None:
    # pytest-rerunfailures reports each failed attempt ("rerun"), then the last one.
    for first in ("failed", "rerun"):
        records: dict = {}
        update_record(records, _report("passed", "setup"), ())
        update_record(records, _report(first, message="attempt 1"), ())
        update_record(records, _report("passed", "teardown"), ())
        update_record(records, _report("passed", "setup"), ())
        record = update_record(records, _report("passed"), ())
        update_record(records, _report("passed", "teardown"), ())
        assert (record.outcome, record.message) == (FAILED, "AssertionError: attempt 1"), first


def test_a_pass_after_a_skip_does_not_hide_it() -> None:
    records: dict = {}
    update_record(records, _report("skipped", message="part skipped"), ())
    record = update_record(records, _report("passed"), ())
    assert (record.outcome, record.message) == (SKIPPED, "part skipped")


def test_a_teardown_error_on_a_skipped_gate_is_an_error(
    pytester: pytest.Pytester, read_report
) -> None:
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.dev

        @pytest.fixture(scope="module")
        def deployment():
            yield
            raise RuntimeError("smoke check in fixture teardown failed")

        def test_first(deployment):
            pass

        def test_last(deployment):
            pytest.skip("optional check")
        """
    )
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    assert result.ret == 1
    report = read_report()
    gate = gates_of(report)["test_last"]
    assert gate["outcome"] == "error"
    assert gate["message"] == "teardown: RuntimeError: smoke check in fixture teardown failed"
    assert report["decision"] == "block"
