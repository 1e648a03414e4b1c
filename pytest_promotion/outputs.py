"""What leaves the process about a run, and how it leaves safely: reports with their
secrets masked before anyone shows them, and the end-of-run writers, each on its own."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .decision import Decision
from .redact import redact
from .untrusted import block, one_line

__all__ = [
    "Writer",
    "check_github_files",
    "check_report_paths",
    "check_writable",
    "mask_properties",
    "mask_report",
    "mask_warning",
    "report_writers",
    "write_each",
    "write_placeholder",
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


def _refuse(option: str, path: Path | str, why: str) -> NoReturn:
    raise pytest.UsageError(f"{option} {path}: {why}")


def check_writable(option: str, path: Path, *, parents: bool = False) -> None:
    """Refuse, at start, a report path that cannot be written at the end: one that is not a
    regular file (a directory, ``/dev/null``, a FIFO: a report replaces the file, and
    only a regular file can be replaced), or whose directory is missing (never created
    for us) or not writable. ``parents``: the writer creates missing directories itself
    (pytest's ``--junitxml``); the nearest existing one must then be a writable directory."""
    if path.exists() or path.is_symlink():
        if not path.is_file():
            _refuse(option, path, "not a regular file (only a regular file is replaced)")
        if not os.access(path, os.W_OK):
            _refuse(option, path, "not writable")
    parent = path.parent
    while parents and not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        what = "not a directory" if parent.exists() else "no such directory (not created)"
        _refuse(option, path, f"{parent}: {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        _refuse(option, path, f"{parent}: directory not writable")


def junit_path(xmlpath: str | None) -> Path | None:
    """pytest's ``--junitxml`` path as pytest's junitxml plugin resolves it."""
    if not xmlpath:
        return None
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(xmlpath)))))


def check_report_paths(report: str | None, xmlpath: str | None) -> Path | None:
    """The JSON report and ``--junitxml`` paths, checked when the run starts (usage errors):
    writable, regular files, not one and the same file. Returns the JSON report's path."""
    junit = junit_path(xmlpath)
    if junit is not None:
        check_writable("--junitxml", junit, parents=True)
    if not report:
        return None
    path = Path(report).resolve()
    check_writable("--promotion-report", path)
    if junit is not None and junit.resolve() == path:
        _refuse("--promotion-report", report, "the same file as --junitxml (give each its own)")
    return path


def check_github_files(environ: Mapping[str, str]) -> None:
    """$GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY (appended to), checked when the run starts."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return
    for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        target = environ.get(var)
        if not target:
            continue
        path = Path(target)
        if path.is_dir():
            _refuse(f"${var}", target, "a directory, not a file")
        parent = path.parent
        if not parent.is_dir():
            _refuse(f"${var}", target, f"{parent}: no such directory")
        if not os.access(path if path.exists() else parent, os.W_OK):
            _refuse(f"${var}", target, "not writable")


def write_placeholder(path: Path, env: str | None, version: str | None) -> None:
    """Replace the previous run's report by a "block" at once: a run that ends in a usage
    error, a crash or a kill must not leave an old "promote" behind."""
    # Imported here: a run without --promotion-report does not load the JSON writer.
    from .reporting.json_report import placeholder, write_atomic

    try:
        write_atomic(path, placeholder(env, version))
    except OSError as exc:
        _refuse("--promotion-report", path, f"cannot write: {exc.strerror or exc}")


def report_writers(
    report_path: Path | None,
    extra: Callable[[], Mapping[str, Any]],
    environ: Mapping[str, str],
) -> list[Writer]:
    """$GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY and the JSON report (with the keys ``extra()``
    gives when it is written) as
    separate writers: one that fails does not keep the others from writing. The JSON
    report, the file that survives the run, comes last."""
    writers: list[Writer] = []
    if environ.get("GITHUB_ACTIONS") == "true":
        from .reporting.github import write_github  # imported only on GitHub Actions

        for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
            target = environ.get(var)
            if target:
                only = {"GITHUB_ACTIONS": "true", var: target}
                writers.append((f"${var} {target}", functools.partial(write_github, environ=only)))
    if report_path is not None:
        from .reporting.json_report import report_text, write_atomic

        path = report_path

        def write_json(decision: Decision) -> None:
            write_atomic(path, report_text(decision, extra()))

        writers.append((f"--promotion-report {path}", write_json))
    return writers


def write_each(writers: list[Writer], decision: Decision, stop: bool = False) -> list[str]:
    """Run every writer, each on its own (``stop``: up to the first that fails); return
    "label: why" for those that failed."""
    failed: list[str] = []
    for label, write in writers:
        try:
            write(decision)
        except OSError as exc:
            failed.append(f"{label}: {exc.strerror or exc}")
            if stop:
                break
    return failed
