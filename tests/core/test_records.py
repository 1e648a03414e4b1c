"""pytest reports -> per-gate records: a later report never hides an earlier failure."""

from __future__ import annotations

from typing import Literal, cast

import pytest

from pytest_promotion.decision import FAILED, SKIPPED, GateRecord
from pytest_promotion.records import update_record
from tests.reports import GateReport, Report, RunAndParse


def gates_of(report: Report) -> dict[str, GateReport]:
    return {g["id"].split("::")[-1]: g for g in report["gates"]}


def test_a_failed_subtest_fails_its_gate(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
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
    result, report = run_and_parse("--env=dev")
    assert result.ret == 1
    assert report["decision"] == "block"
    gate = gates_of(report)["test_gate"]
    assert gate["outcome"] == "failed"
    assert gate["message"] == "AssertionError: subtest 1 failed"
    result.stdout.fnmatch_lines(["*test_gate*FAIL*", "decision: BLOCK*"])


def test_a_failed_unittest_subtest_fails_its_gate(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
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
    result, report = run_and_parse("--env=dev")
    assert result.ret == 1
    assert report["decision"] == "block"
    gate = gates_of(report)["test_gate"]
    assert gate["outcome"] == "failed"
    assert gate["message"] == "AssertionError: 1 == 1"


def test_a_skipped_subtest_is_a_skipped_gate(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
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
    result, report = run_and_parse("--promotion-config=none", "--env=prod")
    assert result.ret == 1
    assert gates_of(report)["test_gate"]["outcome"] == "skipped"
    assert report["decision"] == "block"
    assert "forbids skips" in report["reasons"][0]


def _report(
    outcome: str, when: Literal["setup", "call", "teardown"] = "call", message: str = ""
) -> pytest.TestReport:
    longrepr: tuple[str, int, str] | str | None = None
    if outcome == "skipped":
        longrepr = ("test_x.py", 1, f"Skipped: {message}")
    elif outcome != "passed":
        longrepr = f"E   AssertionError: {message}"
    # "rerun" (pytest-rerunfailures' outcome) is outside pytest's own three: cast
    passed_failed_skipped = cast(Literal["passed", "failed", "skipped"], outcome)
    return pytest.TestReport(
        "test_x.py::test_g", ("test_x.py", 1, "test_g"), {}, passed_failed_skipped, longrepr, when
    )


def test_a_pass_after_a_failure_does_not_hide_it() -> None:
    # pytest-rerunfailures reports each failed attempt ("rerun"), then the last one.
    for first in ("failed", "rerun"):
        records: dict[str, GateRecord] = {}
        update_record(records, _report("passed", "setup"), ())
        update_record(records, _report(first, message="attempt 1"), ())
        update_record(records, _report("passed", "teardown"), ())
        update_record(records, _report("passed", "setup"), ())
        record = update_record(records, _report("passed"), ())
        update_record(records, _report("passed", "teardown"), ())
        assert (record.outcome, record.message) == (FAILED, "AssertionError: attempt 1"), first


def test_a_pass_after_a_skip_does_not_hide_it() -> None:
    records: dict[str, GateRecord] = {}
    update_record(records, _report("skipped", message="part skipped"), ())
    record = update_record(records, _report("passed"), ())
    assert (record.outcome, record.message) == (SKIPPED, "part skipped")


def test_a_teardown_error_on_a_skipped_gate_is_an_error(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
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
    result, report = run_and_parse("--env=dev")
    assert result.ret == 1
    gate = gates_of(report)["test_last"]
    assert gate["outcome"] == "error"
    assert gate["message"] == "teardown: RuntimeError: smoke check in fixture teardown failed"
    assert report["decision"] == "block"
