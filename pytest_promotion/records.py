"""pytest reports -> GateRecords. Runs on the controller, from (possibly xdist-forwarded)
reports, so everything a record needs travels in ``report.user_properties``."""

from __future__ import annotations

from typing import Any

import pytest

from .decision import ERROR, FAILED, NOT_RUN, PASSED, SKIPPED, GateRecord
from .gate_facts import PROP, case_properties
from .redact import redact
from .untrusted import one_line

__all__ = ["add_case_facts", "message_of", "update_record"]

GATE_KEY, TRIGGER_KEY = PROP + "gate", PROP + "trigger"
MEASURED_KEY, THRESHOLD_KEY, MESSAGE_KEY = PROP + "measured", PROP + "threshold", PROP + "message"
FAILED_KEY = PROP + "failed"
FLEET_TARGETS_KEY = "promotion-fleet.targets"  # not PROP: GateRecorder.sync owns those


def message_of(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr: Any = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, lineno, reason)
        reason = str(longrepr[2])
        return reason.removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return " ".join(str(crash.message).split("\n")[:1])
    lines = [line for line in str(longrepr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    # The first "E" line is the exception ("AssertionError: lint failed"); later ones are
    # pytest's explanation of it ("assert False").
    chosen = errors[0][1:].strip() if errors else (lines[0] if lines else "")
    return chosen


# How much an outcome says against the gate. A report never lowers its gate's outcome: one
# nodeid can send several call reports (subtests, unittest's subTest, reruns), and a later
# pass must not hide an earlier failure, nor an earlier skip.
_RANK = {NOT_RUN: 0, PASSED: 1, SKIPPED: 2, FAILED: 3, ERROR: 3}


def _set(record: GateRecord, outcome: str, message: str) -> None:
    if _RANK[outcome] > _RANK[record.outcome]:
        record.outcome, record.message = outcome, message


def _passed_quickly(record: GateRecord, report: pytest.TestReport) -> bool:
    """The common case, setup and call passed: fold it in at once (True), or leave it to
    the full reading (False)."""
    if report.outcome != "passed":
        return False
    when = report.when
    if when == "setup":  # nothing else to learn
        return True
    if when == "call" and not hasattr(report, "wasxfail"):
        if record.outcome == NOT_RUN:
            record.outcome = PASSED
        return True
    return False


def _read_properties(record: GateRecord, report: pytest.TestReport) -> tuple[str | None, bool]:
    """The gate's metadata from the report's ``promotion.*`` properties into ``record``;
    returns (the recorded message, whether the gate recorded a failure)."""
    message = None
    recorded_failure = False
    for key, value in report.user_properties:
        if key == GATE_KEY:
            record.name = str(value)
        elif key == TRIGGER_KEY:
            record.rollback_trigger = str(value) == "rollback"
        elif key == MEASURED_KEY:
            record.measured = str(value)
        elif key == THRESHOLD_KEY:
            record.threshold = str(value)
        elif key == MESSAGE_KEY:
            message = str(value)
        elif key == FAILED_KEY:
            recorded_failure = True
        elif key == FLEET_TARGETS_KEY and isinstance(value, list):
            record.targets = value
    return message, recorded_failure


def _fold_failure(record: GateRecord, report: pytest.TestReport, message: str) -> None:
    """A report that did not pass. Anything but a skip is a failure: "failed", and any
    other outcome a plugin sends (pytest-rerunfailures' "rerun" of an attempt that failed)."""
    failed = report.outcome != "skipped"
    when = report.when
    if when == "setup":
        _set(record, ERROR if failed else SKIPPED, message)
    elif when == "call":
        _set(record, FAILED if failed else SKIPPED, message)
    elif when == "teardown" and failed and record.outcome in (PASSED, NOT_RUN, SKIPPED):
        # A broken teardown overrides a pass and a skip: the gate's fixture failed.
        record.outcome, record.message = ERROR, f"teardown: {message}"


def update_record(
    records: dict[str, GateRecord], report: pytest.TestReport, secrets: tuple[str, ...]
) -> GateRecord:
    """Fold one phase's report into the gate's record (three times per gate: keep it lean)."""
    nodeid = report.nodeid
    record = records.get(nodeid)
    if record is None:
        record = records[nodeid] = GateRecord(nodeid, nodeid)
    record.duration += report.duration
    if _passed_quickly(record, report):
        return record
    # Metadata is read where it is final: the teardown report, or a report that did not pass.
    message, recorded_failure = _read_properties(record, report)
    if hasattr(report, "wasxfail"):
        record.xfail = True
    if report.outcome != "passed":
        _fold_failure(record, report, redact(message or message_of(report), secrets))
        return record
    if report.when == "call":
        _set(record, PASSED, record.message)
    if message and not record.message:  # a passing gate's message, as JUnit shows it
        record.message = redact(message, secrets)
    if recorded_failure:
        # The gate recorded a failure (gate.measure, a failed probe) that the test caught
        # and went on from: the gate fails all the same.
        why = redact(message or "a failure was recorded", secrets)
        _set(record, FAILED, f"{why} (recorded by the gate; the test went on and passed)")
    return record


def add_case_facts(
    records: dict[str, GateRecord], report: pytest.TestReport, secrets: tuple[str, ...]
) -> None:
    """Give the teardown report of a gate that did not pass (failed, error, skipped,
    xfail, waived) its ``promotion.gate`` and ``promotion.trigger`` properties, where
    collection declared none (a gate named by its id, trigger "block": the defaults). Its
    JUnit case then carries them, as pytest's junitxml reads them from this report; a
    passing gate's facts are in the suite's ``promotion.passed`` instead."""
    if report.when != "teardown":
        return
    record = records.get(report.nodeid)
    if (
        record is not None
        and report.outcome == "passed"
        and record.outcome == PASSED
        and not record.xfail
    ):
        return
    properties = report.user_properties
    if any(key == GATE_KEY for key, _ in properties):
        return
    name = report.nodeid if record is None else record.name
    trigger = record is not None and record.rollback_trigger
    properties[:0] = case_properties(one_line(redact(name, secrets)), trigger)
