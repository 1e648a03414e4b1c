"""The JSON decision report as the tests read it: typed, and one way to run and parse.

Modelled on pytest's own ``RunAndParse`` (testing/test_junitxml.py): a test asks for the
``run_and_parse`` fixture (tests/conftest.py), calls it with pytest's arguments and gets
the run's result and its parsed report; ``read_report`` parses a report file on its own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

import pytest

__all__ = [
    "REPORT_NAME",
    "REPORT_OPTION",
    "GateReport",
    "ReadReport",
    "Report",
    "RunAndParse",
    "read",
    "rollback_result",
]

REPORT_NAME = "decision.json"
# for a run that RunAndParse cannot make (a Popen the test signals)
REPORT_OPTION = f"--promotion-report={REPORT_NAME}"

Verdict = Literal["promote", "block", "rollback"]


class GateReport(TypedDict):
    """One gate of the report (decision.GateRecord.to_json)."""

    id: str
    name: str
    outcome: str
    measured: str | None
    threshold: str | None
    message: str
    rollback_trigger: bool
    waiver: str | None
    duration: float
    targets: NotRequired[list[dict[str, Any]]]  # a fleet check's every target
    policy: NotRequired[bool]  # in the ledger's record: the gate is a policy gate


class RollbackReport(TypedDict):
    argv: list[str] | None
    result: dict[str, Any] | None


class SelectionReport(TypedDict):
    selected: int
    deselected_other_environments: int
    deselected_unmarked: int


class Report(TypedDict):
    """The whole report: Decision.to_json and the collector's extra keys. The keys that
    the placeholder written at the start lacks are NotRequired."""

    schema: int
    decision: Verdict
    environment: str | None
    version: str | None
    rollback_command: str | None
    reasons: list[str]
    gates: list[GateReport]
    waivers: list[dict[str, Any]]
    warnings: NotRequired[list[str]]
    rollback: NotRequired[RollbackReport]
    config: NotRequired[str]
    selection: NotRequired[SelectionReport]
    ledger: NotRequired[dict[str, Any]]


def read(path: str | os.PathLike[str]) -> Report:
    """The report at ``path``, parsed (its shape trusted: the assertions check it)."""
    return cast(Report, json.loads(Path(path).read_text(encoding="utf-8")))


class ReadReport:
    """``read_report()``: the report a pytester run wrote, by name, in its directory."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester

    def __call__(self, name: str = REPORT_NAME) -> Report:
        return read(self.pytester.path / name)


class RunAndParse:
    """``run_and_parse(*args)``: pytester runs pytest with ``--promotion-report`` added
    and returns the result and the report it wrote. ``subprocess=True`` runs it in a
    child process (what a killed or exiting run needs), ``timeout`` bounding it."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.read = ReadReport(pytester)

    def __call__(
        self,
        *args: str | os.PathLike[str],
        subprocess: bool = False,
        timeout: float | None = None,
        name: str = REPORT_NAME,
    ) -> tuple[pytest.RunResult, Report]:
        option = REPORT_OPTION if name == REPORT_NAME else f"--promotion-report={name}"
        if subprocess:
            result = self.pytester.runpytest_subprocess(*args, option, timeout=timeout)
        else:
            result = self.pytester.runpytest(*args, option)
        return result, self.read(name)


def rollback_result(report: Report) -> dict[str, Any]:
    """What the executed rollback command did (--promotion-rollback=execute): the report
    must say that it ran."""
    result = report["rollback"]["result"]
    assert result is not None, f"no rollback was executed: {report['rollback']}"
    return result
