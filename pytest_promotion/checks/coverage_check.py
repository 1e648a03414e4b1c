"""The ``coverage`` check kind: line coverage from a report is at least a minimum.

Keys: ``coverage`` (the report: a coverage.py data file, Cobertura XML or a Go cover
profile), ``min`` (percent, default 60), ``paths`` (per-path minimums, ``{"pkg/core" = 80}``),
``max_age`` (seconds or ``"90s"``/``"30m"``/``"1h"``/``"2d"``), ``format``
(``auto``/``coverage``/``cobertura``/``go``).

Fail closed: a missing, empty, unparsable or inconsistent report, 0 of 0 lines, a path
minimum that matches no file, a stale report or one modified in the future (clock skew)
fails with the reason. Stale means: older than ``max_age`` when given, else older than the
newest source file the report names (files that cannot be found are not checked; set
``max_age`` to bound the age regardless).
"""

from __future__ import annotations

import fnmatch
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..redact import redact
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .coverage_reports import FORMATS, Report, read_report, relative

__all__ = ["KEYS", "ROLLBACK", "Report", "parse_duration", "read_report", "run", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "coverage": str,
    "min": float,
    "paths": dict,
    "max_age": (float, str),
    "format": str,
}
ROLLBACK = False
DEFAULT_MIN = 60.0
FUTURE_SLACK = 2.0  # seconds a report's mtime may be ahead (coarse file system timestamps)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: float | str) -> float:
    """``3600``, ``"3600"``, ``"90s"``, ``"30m"``, ``"1h"``, ``"2d"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0 or math.isnan(value):
            raise ValueError("expected > 0")
        return float(value)
    m = _DURATION.match(str(value))
    if not m or float(m[1]) <= 0:
        raise ValueError('expected seconds or a duration like "90s", "30m", "1h", "2d"')
    return float(m[1]) * _UNITS[m[2]]


def validate(spec: Mapping[str, Any], where: str) -> None:
    if not isinstance(spec.get("coverage"), str) or not spec["coverage"].strip():
        raise CheckConfigError(
            f"{where}: key 'coverage': expected the path of a coverage report, found {spec.get('coverage')!r}"
        )
    if "min" in spec and not 0 <= spec["min"] <= 100:
        raise CheckConfigError(
            f"{where}: key 'min': expected a percent 0-100, found {spec['min']!r}"
        )
    for path, minimum in spec.get("paths", {}).items():
        if (
            isinstance(minimum, bool)
            or not isinstance(minimum, int | float)
            or not 0 <= minimum <= 100
        ):
            raise CheckConfigError(
                f"{where}: key 'paths': expected {path!r} = a percent 0-100, found {minimum!r}"
            )
    if "max_age" in spec:
        try:
            parse_duration(spec["max_age"])
        except ValueError as exc:
            raise CheckConfigError(
                f"{where}: key 'max_age': {exc}, found {spec['max_age']!r}"
            ) from None
    if spec.get("format", "auto") not in FORMATS:
        raise CheckConfigError(
            f"{where}: key 'format': expected one of {', '.join(FORMATS)}, found {spec['format']!r}"
        )


def _fmt_pct(value: float, limit: float) -> str:
    """One decimal, unless rounding would make a failing value look like the limit."""
    text = f"{value:.1f}"
    if (value < limit) != (float(text) < limit):
        text = f"{value:.2f}"
    return f"{text} %"


def _threshold(minimum: float, paths: Mapping[str, float]) -> str:
    parts = [f">= {minimum:g} %"] + [f"{p} >= {m:g} %" for p, m in paths.items()]
    return ", ".join(parts)


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    minimum = float(spec.get("min", DEFAULT_MIN))
    paths: dict[str, float] = {str(k): float(v) for k, v in spec.get("paths", {}).items()}
    threshold = _threshold(minimum, paths)
    path = target.path(spec["coverage"])
    try:
        report = read_report(path, target.rootdir, spec.get("format", "auto"))
        _check_fresh(path, report, spec.get("max_age"), target.rootdir)
    except CheckFailed as exc:
        exc.threshold, exc.unit = threshold, "%"
        exc.message = redact(exc.message, target.secrets)
        return exc.outcome()
    pct = report.pct()
    measured = round(pct, 1)
    details: dict[str, Any] = {
        "format": report.fmt,
        "statements": report.total,
        "covered": report.covered,
    }

    def out(passed: bool, message: str) -> Outcome:
        return Outcome(passed, message, measured, threshold, "%", details=details)

    what = f"{report.covered} of {report.total} lines, {spec['coverage']}"
    if pct < minimum:
        return out(False, f"coverage {_fmt_pct(pct, minimum)} < {minimum:g} % ({what})")
    failures: list[str] = []
    for prefix, path_min in paths.items():
        stmts = covered = 0
        for name, (s, c) in report.files.items():
            if _under(name, prefix):
                stmts, covered = stmts + s, covered + c
        if stmts == 0:
            failures.append(f"{prefix}: no measured lines in the report (check the path)")
            continue
        path_pct = 100.0 * covered / stmts
        details[f"path:{prefix}"] = round(path_pct, 1)
        if path_pct < path_min:
            failures.append(f"{prefix}: coverage {_fmt_pct(path_pct, path_min)} < {path_min:g} %")
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        return out(False, f"{failures[0]}{more}")
    return out(True, f"coverage {_fmt_pct(pct, minimum)} >= {minimum:g} % ({what})")


def _under(name: str, prefix: str) -> bool:
    prefix = prefix.strip("/").removeprefix("./")
    if any(ch in prefix for ch in "*?["):
        return fnmatch.fnmatch(name, prefix)
    return name == prefix or name.startswith(prefix + "/")


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _check_fresh(path: Path, report: Report, max_age: float | str | None, rootdir: Path) -> None:
    made = path.stat().st_mtime
    age = time.time() - made
    if age < -FUTURE_SLACK:  # it would look fresh for as long as the clocks disagree
        raise CheckFailed(
            f"coverage report {path} is modified in the future ({_ago(-age)} ahead of this "
            "machine's clock): clock skew?"
        )
    if max_age is not None:
        limit = parse_duration(max_age)
        if age > limit:
            raise CheckFailed(
                f"coverage report {path} is stale: written {_ago(age)} ago (max_age {_ago(limit)})"
            )
        return
    newest: tuple[float, Path] | None = None
    for source in report.sources:
        try:
            mtime = source.stat().st_mtime
        except OSError:
            continue
        if newest is None or mtime > newest[0]:
            newest = (mtime, source)
    if newest is not None and newest[0] > made:
        raise CheckFailed(
            f"coverage report {path} is stale: {relative(newest[1], rootdir)} changed "
            f"{_ago(newest[0] - made)} after it was written (rerun the tests with coverage)"
        )
