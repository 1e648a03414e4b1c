"""Coverage reports read into one shape, :class:`Report`: the format told from the file's
first bytes, and the readers of coverage.py data files and Go cover profiles (Cobertura
XML has a module of its own, :mod:`.cobertura_report`, imported when one is read).

Every reader fails closed with :class:`CheckFailed` saying why the report cannot be used.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .base import CheckFailed

__all__ = ["FORMATS", "Report", "read_report", "relative"]

FORMATS = ("auto", "coverage", "cobertura", "go")
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


def relative(path: Path, rootdir: Path) -> str:
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
    if fmt == "cobertura":
        from .cobertura_report import read_cobertura  # it imports Report from here

        report = read_cobertura(path, rootdir)
    else:
        report = {"coverage": _read_coveragepy, "go": _read_go}[fmt](path, rootdir)
    if report.total <= 0:
        raise CheckFailed(f"coverage report {path} measures 0 of 0 lines: no data to vouch for")
    if math.isnan(report.pct()):
        raise CheckFailed(f"coverage report {path}: the percentage is not a number")
    if not 0 <= report.covered <= report.total or not 0 <= report.pct() <= 100:
        raise CheckFailed(
            f"coverage report {path}: inconsistent: {report.covered} of {report.total} lines "
            f"covered, {report.pct():g} %"
        )
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
        report.files[relative(source, rootdir)] = [
            int(s.get("num_statements", 0)),
            int(s.get("covered_lines", 0)),
        ]
    report.sources = [Path(f) for f in measured if Path(f).is_file()]
    return report


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
