"""pytest reports -> GateRecords. Runs on the controller, from (possibly xdist-forwarded)
reports, so everything a record needs travels in ``report.user_properties``."""

from __future__ import annotations

from typing import Any

import pytest

from .decision import ERROR, FAILED, NOT_RUN, PASSED, SKIPPED, GateRecord
from .gate import PROP
from .redact import redact

__all__ = ["message_of", "update_record"]


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


def update_record(
    records: dict[str, GateRecord], report: pytest.TestReport, secrets: tuple[str, ...]
) -> GateRecord:
    """Fold one phase's report into the gate's record."""
    nodeid = report.nodeid
    record = records.get(nodeid)
    if record is None:
        record = records[nodeid] = GateRecord(id=nodeid, name=nodeid)
    record.duration += report.duration
    when, passed = report.when, report.passed
    if passed and when == "setup":  # the common case, once per gate: nothing else to learn
        return record
    if passed and when == "call" and not hasattr(report, "wasxfail"):
        record.outcome = PASSED
        return record
    # Metadata is read where it is final: the teardown report, or a report that did not pass.
    props: dict[str, str] = {}
    for key, value in report.user_properties:
        if isinstance(key, str) and key.startswith(PROP):
            props[key[len(PROP) :]] = str(value)
    if "gate" in props:
        record.name = props["gate"]
    if "trigger" in props:
        record.rollback_trigger = props["trigger"] == "rollback"
    record.measured = props.get("measured", record.measured)
    record.threshold = props.get("threshold", record.threshold)
    if hasattr(report, "wasxfail"):
        record.xfail = True
    message = ""
    if not report.passed:
        message = redact(props.get("message") or message_of(report), secrets)
    if report.when == "setup":
        if report.failed:
            record.outcome, record.message = ERROR, message
        elif report.skipped:
            record.outcome, record.message = SKIPPED, message
    elif report.when == "call":
        if report.passed:
            record.outcome = PASSED
        elif report.failed:
            record.outcome, record.message = FAILED, message
        else:
            record.outcome, record.message = SKIPPED, message
    elif report.when == "teardown" and report.failed and record.outcome in (PASSED, NOT_RUN):
        record.outcome, record.message = ERROR, f"teardown: {message}"
    return record
