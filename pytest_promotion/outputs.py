"""What leaves the process about a run, and how it leaves safely: reports with their
secrets masked before anyone shows them, and the end-of-run writers, each on its own."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from .decision import Decision
from .redact import redact
from .reporting.json_report import write_atomic
from .untrusted import block, one_line

__all__ = [
    "Writer",
    "mask_properties",
    "mask_report",
    "mask_warning",
    "report_writers",
    "write_reports",
]

Writer = tuple[str, Callable[[Decision], None]]  # (label for messages, write)


def mask_report(report: pytest.TestReport | pytest.CollectReport, secrets: tuple[str, ...]) -> None:
    """Mask secrets in what pytest shows of a report: the traceback or skip reason, the
    captured output and log, an xfail reason. pytest's structured failure is kept when
    nothing is masked."""
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, lineno, reason)
        path, lineno, reason = longrepr
        masked = block(redact(str(reason), secrets))
        if masked != reason:
            report.longrepr = (path, lineno, masked)
    elif longrepr is not None:
        text = str(longrepr)
        masked = block(redact(text, secrets))  # tool output, file names: escapes shown
        if masked != text:
            report.longrepr = masked
    if report.sections:
        report.sections = [
            (title, block(redact(content, secrets))) for title, content in report.sections
        ]
    wasxfail = getattr(report, "wasxfail", None)
    if isinstance(wasxfail, str) and wasxfail:
        report.wasxfail = block(redact(wasxfail, secrets))  # type: ignore[union-attr]


def mask_properties(report: pytest.TestReport, secrets: tuple[str, ...]) -> None:
    """Mask secrets in the values a test recorded (``record_property``: JUnit case
    properties) and in ours (``promotion.*``: a gate's name, what ``gate.measure()`` got,
    its message, from which the records are made), and show their control characters."""
    changed = False
    masked = []
    for key, value in report.user_properties:
        text = str(value)
        hidden = one_line(redact(text, secrets))
        if hidden != text:  # only then: a recorded 3 stays the number 3
            value, changed = hidden, True
        masked.append((key, value))
    if changed:
        report.user_properties = masked


def mask_warning(message: Any, secrets: tuple[str, ...]) -> None:
    """Mask secrets in a recorded warning (``warnings.WarningMessage``) in place, before
    pytest's warnings summary or JUnit file shows it."""
    warning = message.message
    text = str(warning)
    masked = block(redact(text, secrets))
    if masked != text:
        try:
            message.message = type(warning)(masked)
        except Exception:  # a warning class with another signature: a plain one, masked
            message.message = UserWarning(masked)


def report_writers(
    report_path: Path | None, extra: Mapping[str, Any], environ: Mapping[str, str]
) -> list[Writer]:
    """$GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY and the JSON report (with ``extra`` keys) as
    separate writers: one that fails does not keep the others from writing. The JSON
    report, the file that survives the run, comes last: when a GitHub file cannot be
    written the decision is no longer "promote" by the time the report is."""
    from .reporting.github import write_github

    writers: list[Writer] = []
    if environ.get("GITHUB_ACTIONS") == "true":
        for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
            target = environ.get(var)
            if target:
                only = {"GITHUB_ACTIONS": "true", var: target}
                writers.append((f"${var} {target}", functools.partial(write_github, environ=only)))
    if report_path is not None:
        path = report_path

        def write_json(decision: Decision) -> None:
            write_atomic(path, {**decision.to_json(), **extra})

        writers.append((f"--promotion-report {path}", write_json))
    return writers


def write_reports(
    writers: list[Writer],
    decision: Decision,
    on_block: Callable[[Decision], None],
    say: Callable[[str], None],
) -> None:
    """Each writer on its own: one that cannot write (a full disk, a bad $GITHUB_OUTPUT) is
    one line (``say``) and blocks at once (``on_block``: the rollback), so the writers
    after it (the JSON report last) write the block; those that wrote "promote" before the
    failure write again."""
    promoted = decision.promote

    def cannot_write(why: str) -> None:
        say(f"promotion: cannot write {why}")
        decision.reasons.append(f"the report could not be written: {why}")
        if decision.promote:
            decision.decision = "block"
            on_block(decision)

    failed = _write_each(writers, decision, cannot_write)
    if promoted and failed:  # the writers before the first failure wrote "promote"
        first = min(i for i, (label, _) in enumerate(writers) if label in failed)
        _write_each(writers[:first], decision, cannot_write)


def _write_each(
    writers: list[Writer], decision: Decision, on_failure: Callable[[str], None]
) -> dict[str, str]:
    """Run every writer; return ``{label: "label: why"}`` for those that raised OSError.
    ``on_failure(why)`` is called at once, before the next writer runs (it may change the
    decision those write)."""
    failed: dict[str, str] = {}
    for label, write in writers:
        try:
            write(decision)
        except OSError as exc:
            failed[label] = f"{label}: {exc.strerror or exc}"
            on_failure(failed[label])
    return failed
