"""The ``coverage`` check kind: line coverage from a report is at least a minimum.

Keys: ``coverage`` (the report: a coverage.py data file, Cobertura XML or a Go cover
profile), ``min`` (percent, default 60), ``paths`` (per-path minimums, ``{"pkg/core" = 80}``),
``max_age`` (seconds or ``"90s"``/``"30m"``/``"1h"``/``"2d"``), ``format``
(``auto``/``coverage``/``cobertura``/``go``).

Fail closed: a missing, empty or unparsable report, 0 of 0 lines, a path minimum that
matches no file, or a stale report fails with the reason. Stale means: older than
``max_age`` when given, else older than the newest source file the report names (files
that cannot be found are not checked; set ``max_age`` to bound the age regardless).
"""

from __future__ import annotations

import fnmatch
import math
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..redact import redact
from .base import CheckConfigError, CheckFailed, Outcome, Target

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
FORMATS = ("auto", "coverage", "cobertura", "go")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_GO_LINE = re.compile(r"^(?P<file>.+):(?P<block>\d+\.\d+,\d+\.\d+) (?P<stmts>\d+) (?P<count>\d+)$")


@dataclass
class Report:
    """Statements and covered statements, in total and per source file."""

    fmt: str
    total: int = 0
    covered: int = 0
    # display name (relative to the rootdir when possible) -> [statements, covered]
    files: dict[str, list[int]] = field(default_factory=dict)
    # source files the report names that exist on disk (for the staleness rule)
    sources: list[Path] = field(default_factory=list)
    # coverage.py's own percentage (it counts branches when measured)
    percent: float | None = None

    def pct(self) -> float:
        if self.percent is not None:
            return self.percent
        return 100.0 * self.covered / self.total if self.total else math.nan


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


def _rel(path: Path, rootdir: Path) -> str:
    try:
        return path.resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def read_report(path: Path, rootdir: Path, fmt: str = "auto") -> Report:
    """The report at ``path``; raises CheckFailed saying why it cannot be used."""
    if not path.is_file():
        raise CheckFailed(f"coverage report {path} not found (did the tests run with coverage?)")
    if path.stat().st_size == 0:
        raise CheckFailed(f"coverage report {path} is empty")
    if fmt == "auto":
        with path.open("rb") as f:
            head = f.read(64)
        if head.startswith(b"SQLite format 3"):
            fmt = "coverage"
        elif head.lstrip().startswith(b"mode:"):
            fmt = "go"
        elif head.lstrip().startswith(b"<"):
            fmt = "cobertura"
        else:
            raise CheckFailed(
                f"coverage report {path}: not a coverage.py data file, Cobertura XML or Go cover profile"
            )
    reader = {"coverage": _read_coveragepy, "cobertura": _read_cobertura, "go": _read_go}[fmt]
    report = reader(path, rootdir)
    if report.total <= 0:
        raise CheckFailed(f"coverage report {path} measures 0 of 0 lines: no data to vouch for")
    if math.isnan(report.pct()):
        raise CheckFailed(f"coverage report {path}: the percentage is not a number")
    return report


def _read_coveragepy(path: Path, rootdir: Path) -> Report:
    import json

    import coverage

    config: str | bool = False
    for name in (".coveragerc", "setup.cfg", "tox.ini", "pyproject.toml"):
        if (rootdir / name).is_file():
            config = str(rootdir / name)
            break
    try:
        cov = coverage.Coverage(data_file=str(path), config_file=config)
        cov.load()
        measured = cov.get_data().measured_files()
        if not measured:
            raise CheckFailed(f"coverage data {path} has no measured files")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "coverage.json"
            cov.json_report(outfile=str(out))
            data = json.loads(out.read_text())
    except CheckFailed:
        raise
    except Exception as exc:  # coverage raises NoSource, NoDataError, DataError, sqlite errors
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckFailed(f"coverage data {path} cannot be reported: {first}") from None
    totals = data.get("totals", {})
    report = Report(
        "coverage", int(totals.get("num_statements", 0)), int(totals.get("covered_lines", 0))
    )
    report.percent = float(totals.get("percent_covered", math.nan))
    for name, entry in data.get("files", {}).items():
        s = entry.get("summary", {})
        source = Path(name) if Path(name).is_absolute() else rootdir / name
        report.files[_rel(source, rootdir)] = [
            int(s.get("num_statements", 0)),
            int(s.get("covered_lines", 0)),
        ]
    report.sources = [Path(f) for f in measured if Path(f).is_file()]
    return report


def _iterparse(path: Path) -> Iterator[tuple[str, Any]]:
    # expat does not fetch external entities and refuses entity-expansion bombs
    from xml.etree.ElementTree import ParseError, iterparse

    try:
        yield from iterparse(str(path), events=("start", "end"))  # noqa: S314
    except ParseError as exc:
        raise CheckFailed(f"coverage report {path} is not valid XML: {exc}") from None


def _read_cobertura(path: Path, rootdir: Path) -> Report:
    report = Report("cobertura")
    roots: list[Path] = []
    stack: list[str] = []
    root_attrs: dict[str, str] | None = None
    current: list[int] | None = None
    for event, elem in _iterparse(path):
        if event == "start":
            stack.append(elem.tag)
            if root_attrs is None:
                if elem.tag != "coverage":
                    raise CheckFailed(
                        f"coverage report {path}: expected Cobertura <coverage>, found <{elem.tag}>"
                    )
                root_attrs = dict(elem.attrib)
            elif elem.tag == "class":
                name = elem.get("filename", "")
                current = report.files.setdefault(_resolve(name, roots, rootdir, report), [0, 0])
            continue
        stack.pop()
        if elem.tag == "source" and elem.text:
            src = Path(elem.text.strip())
            roots.append(src if src.is_absolute() else rootdir / src)
        elif elem.tag == "line" and current is not None and stack[-2:] == ["class", "lines"]:
            current[0] += 1
            if elem.get("hits", "0").strip() not in ("0", ""):
                current[1] += 1
        elif elem.tag in ("class", "package"):
            current = None
            elem.clear()
    if root_attrs is None:
        raise CheckFailed(f"coverage report {path} is not valid XML: no root element")
    counted = [sum(v[0] for v in report.files.values()), sum(v[1] for v in report.files.values())]
    try:
        report.total = int(root_attrs["lines-valid"])
        report.covered = int(root_attrs["lines-covered"])
    except (KeyError, ValueError):
        report.total, report.covered = counted
    return report


def _resolve(name: str, roots: list[Path], rootdir: Path, report: Report) -> str:
    candidates = [r / name for r in roots] + [
        Path(name) if Path(name).is_absolute() else rootdir / name
    ]
    for c in candidates:
        if c.is_file():
            report.sources.append(c)
            return _rel(c, rootdir)
    return name


def _read_go(path: Path, rootdir: Path) -> Report:
    report = Report("go")
    module = ""
    gomod = rootdir / "go.mod"
    if gomod.is_file():
        m = re.search(r"^module\s+(\S+)", gomod.read_text(errors="replace"), re.M)
        module = m[1].strip('"') + "/" if m else ""
    blocks: dict[tuple[str, str], list[int]] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
        if not re.fullmatch(r"mode: (set|count|atomic)", first):
            raise CheckFailed(
                f"coverage report {path}: expected a Go cover profile ('mode: set' first), "
                f"found {first[:60]!r}"
            )
        for number, raw in enumerate(f, start=2):
            line = raw.strip()
            if not line:
                continue
            m = _GO_LINE.match(line)
            if not m:
                raise CheckFailed(
                    f"coverage report {path}:{number}: not a cover profile line: {line[:80]!r}"
                )
            # the same block appears once per test binary (-coverpkg): merge, covered if any hit
            block = blocks.setdefault((m["file"], m["block"]), [int(m["stmts"]), 0])
            block[1] = max(block[1], int(m["count"]))
    seen: set[str] = set()
    for (name, _), (stmts, count) in blocks.items():
        rel = name.removeprefix(module) if module else name
        entry = report.files.setdefault(rel, [0, 0])
        entry[0] += stmts
        entry[1] += stmts if count > 0 else 0
        report.total += stmts
        report.covered += stmts if count > 0 else 0
        if rel not in seen:
            seen.add(rel)
            if (rootdir / rel).is_file():
                report.sources.append(rootdir / rel)
    return report


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _check_fresh(path: Path, report: Report, max_age: float | str | None, rootdir: Path) -> None:
    made = path.stat().st_mtime
    if max_age is not None:
        age = time.time() - made
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
            f"coverage report {path} is stale: {_rel(newest[1], rootdir)} changed "
            f"{_ago(newest[0] - made)} after it was written (rerun the tests with coverage)"
        )
