"""The ``benchmark`` check kind: the newest run is not slower than its baseline.

Two sources:

- pytest-benchmark storage (default): ``benchmark = ".benchmarks"``, the directory given
  to ``--benchmark-storage`` (files ``<machine_id>/NNNN_*.json`` written by
  ``--benchmark-autosave``). The current run is the newest (highest number, any machine
  directory) unless ``current`` names another; the baseline is the run saved just before
  it in the same machine directory, unless ``baseline`` names one (``"0001"``: a number
  prefix or a file name inside the storage, or a path relative to the rootdir).
  The JSON is read directly: pytest-benchmark's ``FileStorage`` creates directories
  on open and skips files it cannot parse with a warning, which would hide bad evidence.
- Go ``-bench`` text output, ``format = "go"``: ``benchmark = "bench/new.txt"`` is the
  current run (``current`` may name it instead), ``baseline = "bench/old.txt"``; the
  median of ``ns/op`` over ``-count`` repeats; a ``FAIL`` line fails the check.

Each benchmark's median is compared with the baseline's; ``max_regression`` (default 0.5,
i.e. +50 %) bounds the slowdown; ``benchmarks`` (names or fnmatch patterns) limits the
comparison. A regression beyond the limit fails with ``rollback = True``. A missing
current run, a missing baseline run, a baselined benchmark absent from the current run,
or no benchmark in common fails (block); ``on_missing_baseline = "record"`` turns a
missing baseline run into a pass that says nothing was compared.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..redact import redact
from .base import CheckConfigError, CheckFailed, Outcome, Target

__all__ = [
    "KEYS",
    "ROLLBACK",
    "compare",
    "format_seconds",
    "read_go",
    "read_pytest",
    "run",
    "validate",
]

KEYS: dict[str, type | tuple[type, ...]] = {
    "benchmark": str,
    "format": str,
    "current": str,
    "baseline": str,
    "max_regression": float,
    "benchmarks": list,
    "on_missing_baseline": str,
}
ROLLBACK = True
DEFAULT_MAX_REGRESSION = 0.5
_RUN_FILE = re.compile(r"^(\d{4})_.*\.json$")
_GO_LINE = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(\S+) ns/op\b")
_GO_NUMBER = re.compile(r"^\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")

Medians = dict[str, float]  # benchmark -> median seconds


def validate(spec: Mapping[str, Any], where: str) -> None:
    if not isinstance(spec.get("benchmark"), str) or not spec["benchmark"]:
        raise CheckConfigError(
            f"{where}: key 'benchmark': expected a path, found {spec.get('benchmark')!r}"
        )
    if spec.get("format", "pytest") not in ("pytest", "go"):
        raise CheckConfigError(
            f'{where}: key \'format\': expected "pytest" or "go", found {spec["format"]!r}'
        )
    limit = spec.get("max_regression", DEFAULT_MAX_REGRESSION)
    if not limit > 0 or math.isinf(limit):
        raise CheckConfigError(
            f"{where}: key 'max_regression': expected a fraction > 0 (0.5 = +50 %), found {limit!r}"
        )
    if spec.get("on_missing_baseline", "fail") not in ("fail", "record"):
        raise CheckConfigError(
            f'{where}: key \'on_missing_baseline\': expected "fail" or "record", found {spec["on_missing_baseline"]!r}'
        )
    if not all(isinstance(b, str) and b for b in spec.get("benchmarks", [])):
        raise CheckConfigError(
            f"{where}: key 'benchmarks': expected a list of names, found {spec['benchmarks']!r}"
        )


def format_seconds(value: float) -> str:
    """0.0024 -> ``2.40 ms``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value / 1e-9:.2f} ns"


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    limit = float(spec.get("max_regression", DEFAULT_MAX_REGRESSION))
    threshold = f"median <= +{limit * 100:g} %"
    record = spec.get("on_missing_baseline", "fail") == "record"
    try:
        if spec.get("format", "pytest") == "go":
            current_path = target.path(spec.get("current", spec["benchmark"]))
            current, current_name = read_go(current_path), current_path.name
            base_path = target.path(spec["baseline"]) if "baseline" in spec else None
            if base_path is None or not base_path.is_file():
                baseline = None
                missing = (
                    f"baseline {base_path} not found"
                    if base_path
                    else "no 'baseline' file configured"
                )
            else:
                _not_itself(current_path, base_path)
                baseline, base_name, missing = read_go(base_path), base_path.name, ""
        else:
            current, current_name, baseline, base_name, missing = read_pytest(spec, target)
        if baseline is None:
            if record:
                return Outcome(
                    True,
                    f"nothing to compare: {missing}; run {current_name} is recorded as the baseline "
                    '(on_missing_baseline = "record")',
                    measured="no baseline",
                    threshold=threshold,
                    rollback=False,
                )
            raise CheckFailed(
                f'{missing}: cannot compare {current_name} (set on_missing_baseline = "record" once)'
            )
        outcome = compare(current, baseline, limit, spec.get("benchmarks"))
    except CheckFailed as exc:
        exc.threshold = threshold
        exc.message = redact(exc.message, target.secrets)
        return exc.outcome()
    outcome.threshold = threshold
    outcome.message = redact(f"{outcome.message} ({current_name} vs {base_name})", target.secrets)
    return outcome


def compare(
    current: Medians,
    baseline: Medians,
    limit: float,
    only: list[str] | None = None,
) -> Outcome:
    """Per-benchmark median comparison; the worst regression decides."""

    def wanted(name: str) -> bool:
        short = name.rsplit("::", 1)[-1]
        return not only or any(fnmatch.fnmatchcase(n, p) for p in only for n in (name, short))

    base = {k: v for k, v in baseline.items() if wanted(k)}
    cur = {k: v for k, v in current.items() if wanted(k)}
    gone = sorted(set(base) - set(cur))
    if gone:
        more = f" and {len(gone) - 1} more" if len(gone) > 1 else ""
        raise CheckFailed(
            f"{_short(gone[0])} is in the baseline but missing from the current run{more}"
        )
    common = sorted(set(base) & set(cur))
    if not common:
        raise CheckFailed("no benchmark in common between the current run and the baseline")
    changes: list[tuple[float, str]] = []
    for name in common:
        if not all(math.isfinite(v) and v > 0 for v in (base[name], cur[name])):
            raise CheckFailed(
                f"{_short(name)}: no usable median (baseline {base[name]!r}, current {cur[name]!r}): "
                "expected times > 0"
            )
        changes.append((cur[name] / base[name] - 1.0, name))
    change, name = max(changes)
    line = (
        f"{_short(name)}: median {format_seconds(cur[name])} vs {format_seconds(base[name])} "
        f"({change * 100:+.0f}% {'>' if change > limit else '<='} +{limit * 100:.0f}%)"
    )
    new = sorted(set(cur) - set(base))
    details: dict[str, Any] = {
        "changes": {_short(n): round(c, 4) for c, n in sorted(changes, reverse=True)},
        "new": [_short(n) for n in new],
    }
    measured = f"{change * 100:+.0f}%"
    regressed = [n for c, n in changes if c > limit]
    if regressed:
        more = f" and {len(regressed) - 1} more" if len(regressed) > 1 else ""
        return Outcome(False, line + more, measured, rollback=True, details=details)
    return Outcome(
        True, f"{len(common)} benchmark(s) within limit, worst {line}", measured, details=details
    )


def _short(name: str) -> str:
    return name.rsplit("::", 1)[-1]


def _not_itself(current: Path, baseline: Path) -> None:
    """A run compared with itself is +0 % whatever it measured: no evidence."""
    if current.resolve() == baseline.resolve():
        raise CheckFailed(
            f"the baseline {baseline.name} is the current run itself: nothing to compare "
            "(save a newer run, or point 'current' and 'baseline' at different runs)"
        )


# ---------------------------------------------------------------- pytest-benchmark


def _runs(storage: Path) -> list[Path]:
    return sorted(
        (p for p in storage.glob("*/*.json") if _RUN_FILE.match(p.name)),
        key=lambda p: (p.name[:4], p.stat().st_mtime, p.name),
    )


def _pick(name: str, storage: Path, runs: list[Path], target: Target, key: str) -> Path:
    for p in runs:
        if p.name == name or p.name.startswith(name + "_") or p.name[:4] == name.zfill(4):
            return p
    path = target.path(name)
    if path.is_file():
        return path
    raise CheckFailed(f"{key} run {name!r} not found in {storage} or as a file")


def read_pytest(
    spec: Mapping[str, Any], target: Target
) -> tuple[Medians, str, Medians | None, str, str]:
    """(current medians, its name, baseline medians or None, its name, why missing)."""
    storage = target.path(spec["benchmark"])
    if not storage.is_dir():
        raise CheckFailed(
            f"benchmark storage {storage} not found (run pytest with --benchmark-autosave)"
        )
    runs = _runs(storage)
    if not runs:
        raise CheckFailed(f"benchmark storage {storage} holds no saved run (NNNN_*.json)")
    current = (
        _pick(spec["current"], storage, runs, target, "current") if "current" in spec else runs[-1]
    )
    if "baseline" in spec:
        baseline: Path | None = _pick(spec["baseline"], storage, runs, target, "baseline")
        missing = ""
    else:
        same = [p for p in runs if p.parent == current.parent and p.name[:4] < current.name[:4]]
        baseline = same[-1] if same else None
        missing = f"no run saved before {current.name} in {current.parent.name}"
    if baseline is not None:
        _not_itself(current, baseline)
    cur = _read_pytest_json(current)
    if baseline is None:
        return cur, current.name, None, "", missing
    return cur, current.name, _read_pytest_json(baseline), baseline.name, ""


def _read_pytest_json(path: Path) -> Medians:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        benches = data["benchmarks"]
        medians = {str(b["fullname"]): _seconds(b["stats"]["median"]) for b in benches}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckFailed(
            f"benchmark run {path.name} is unreadable: {type(exc).__name__}: {exc}"
        ) from None
    if not medians:
        raise CheckFailed(f"benchmark run {path.name} contains no benchmark")
    return medians


def _seconds(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"median {value!r} is not a number")
    return float(value)


# ---------------------------------------------------------------- go test -bench


def read_go(path: Path) -> Medians:
    """``BenchmarkX-8  1000  1234 ns/op`` lines -> median seconds per benchmark."""
    if not path.is_file():
        raise CheckFailed(f"go benchmark output {path} not found")
    samples: dict[str, list[float]] = {}
    pkg = ""
    packages: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.startswith("pkg: "):
            pkg = line[5:].strip()
            packages.add(pkg)
        elif line.startswith("FAIL") or line.startswith("--- FAIL"):
            raise CheckFailed(
                f"go benchmark output {path.name} reports a failure: {line.strip()[:120]}"
            )
        m = _GO_LINE.match(line)
        if m:
            name = f"{pkg}::{m[1]}" if pkg else m[1]
            if not _GO_NUMBER.match(m[2]) or not 0 < float(m[2]) < math.inf:
                raise CheckFailed(
                    f"go benchmark output {path.name} line {n}: {m[1]}: expected a time > 0 "
                    f"in ns/op, found {m[2][:40]!r}"
                )
            samples.setdefault(name, []).append(float(m[2]) * 1e-9)
    if not samples:
        raise CheckFailed(
            f"go benchmark output {path.name} contains no 'BenchmarkX ... ns/op' line"
        )
    return {name: statistics.median(values) for name, values in samples.items()}
