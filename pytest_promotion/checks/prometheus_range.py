"""The ``prometheus`` kind's ``over`` key: a query judged over a window, not an instant.

    [[environments.prod.checks]]
    name = "error-rate-during-soak"
    prometheus = "{prometheus}"
    query = 'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))'
    max = 0.01
    over = "24h"          # every sample of the last 24 h within min/max
    max_gap = "10m"       # no hole in the data longer than this (default: 5 steps)
    step = "1m"           # the resolution (default: over / 1000, at least 1 s)

A range query (``/api/v1/query_range``) from ``now - over`` to now: exactly one series;
every sample finite and within the bounds; no gap between samples (nor at either end of
the window) longer than ``max_gap``. No data, a gap, NaN or several series fail with
``rollback=False`` (nothing proves the window was good, and nothing proves it was bad);
a sample outside the bounds is evidence (the kind's rollback). The measured value is the
worst sample (the highest for ``max``, the lowest for ``min``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ..ledger.identity import parse_duration
from ..redact import redact, redact_url
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .prometheus_api import MISSING, api, labels_text, need, note, parsing, short

__all__ = ["KEYS", "MAX_POINTS", "run_over", "validate_over"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "over": (str, int, float),
    "max_gap": (str, int, float),
    "step": (str, int, float),
}
MAX_POINTS = 11_000  # Prometheus' own limit per series
MAX_WINDOW = 31 * 86400.0


def _seconds(spec: Mapping[str, Any], key: str, where: str) -> float:
    try:
        return parse_duration(spec[key], f"{where}: key {key!r}")
    except ValueError as exc:
        raise CheckConfigError(str(exc)) from None


def window(spec: Mapping[str, Any], where: str = "check") -> tuple[float, float, float]:
    """(over, step, max_gap) in seconds."""
    over = _seconds(spec, "over", where)
    step = _seconds(spec, "step", where) if "step" in spec else max(1.0, over / 1000)
    gap = _seconds(spec, "max_gap", where) if "max_gap" in spec else 5 * step
    return over, step, gap


def validate_over(spec: Mapping[str, Any], where: str) -> None:
    for key in ("max_gap", "step"):
        if key in spec and "over" not in spec:
            raise CheckConfigError(
                f"{where}: key {key!r}: expected only with 'over', found it alone"
            )
    if "over" not in spec:
        return
    if "query" not in spec:
        raise CheckConfigError(f"{where}: key 'over': expected only with 'query', found it alone")
    over, step, gap = window(spec, where)
    if over > MAX_WINDOW:
        raise CheckConfigError(f"{where}: key 'over': expected at most 31d, found {spec['over']!r}")
    if over / step > MAX_POINTS:
        raise CheckConfigError(
            f"{where}: key 'step': {over:g} s every {step:g} s is more than {MAX_POINTS} points "
            f"(Prometheus' limit): use a longer step"
        )
    if gap < step:
        raise CheckConfigError(
            f"{where}: key 'max_gap': expected at least the step ({step:g} s), found {gap:g} s"
        )


def _series(data: Any, what: str, shown: str, q: str) -> tuple[str, list[Any]]:
    with parsing(what):
        data = need(data, dict, "data", what)
        kind, result = data.get("resultType", MISSING), data.get("result", MISSING)
        if kind != "matrix":
            raise CheckFailed(f"{what}: not a range answer (resultType is {short(kind)})")
        result = need(result, list, "result", what)
        if not result:
            raise CheckFailed(
                f"prometheus {shown}: {q} returned no data over the window; no data is never "
                f"a pass: check the metric name, labels and the window"
            )
        if len(result) > 1:
            raise CheckFailed(
                f"prometheus {shown}: {q} returned {len(result)} series over the window; "
                f"aggregate them to one, e.g. sum(...) or max(...)"
            )
        series = need(result[0], dict, "result[0]", what)
        labels = labels_text(need(series.get("metric", {}), dict, "result[0].metric", what))
        return labels, need(series.get("values", MISSING), list, "result[0].values", what)


def _points(values: list[Any], what: str, shown: str, q: str) -> list[tuple[float, float]]:
    points = []
    with parsing(what):
        for i, pair in enumerate(values):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise CheckFailed(
                    f"{what}: not a Prometheus API answer (values[{i}] is {short(pair)})"
                )
            at, value = float(pair[0]), float(pair[1])
            if not math.isfinite(value):
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
                raise CheckFailed(
                    f"prometheus {shown}: {q} was {pair[1]} at {when} UTC (no data: e.g. 0/0); "
                    f"no data is never a pass"
                )
            points.append((at, value))
    return points


def _gap(points: list[tuple[float, float]], start: float, end: float) -> tuple[float, float]:
    """(the longest gap in seconds, where it starts) including both ends of the window."""
    times = [start, *(t for t, _ in points), end]
    widest = max(range(len(times) - 1), key=lambda i: times[i + 1] - times[i])
    return times[widest + 1] - times[widest], times[widest]


def run_over(spec: Mapping[str, Any], base: str, target: Target, deadline: float,
             threshold: str) -> Outcome:  # fmt: skip
    shown = redact(redact_url(base), target.secrets)
    query = str(spec["query"])
    q = " ".join(query.split())[:120]
    over, step, max_gap = window(spec)
    end = time.time()
    start = end - over
    what = f"prometheus {shown}: query {q!r} over {spec['over']}"
    params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}",
              "timeout": f"{max(0.001, deadline - time.monotonic()):.3f}"}  # fmt: skip
    data, warnings = api(base, "/api/v1/query_range", target, deadline, what, params)
    labels, values = _series(data, what, shown, q)
    points = _points(values, what, shown, q)
    gap, at = _gap(points, start, end)
    if gap > max_gap + step:  # a sample is at most one step from the window's ends
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
        raise CheckFailed(
            f"prometheus {shown}: {q}: no data for {gap:.0f} s from {when} UTC (max_gap "
            f"{max_gap:g} s) over {spec['over']}: a hole in the window is never a pass",
            threshold=threshold,
        )
    lo = float(spec["min"]) if "min" in spec else None
    hi = float(spec["max"]) if "max" in spec else None
    below = [(t, v) for t, v in points if lo is not None and v < lo]
    above = [(t, v) for t, v in points if hi is not None and v > hi]
    worst = max(v for _, v in points) if hi is not None else min(v for _, v in points)
    details: dict[str, Any] = {"samples": len(points), "over_s": over, "step_s": step,
                               "series": labels}  # fmt: skip
    if warnings:
        details["warnings"] = warnings
    tail = note(warnings)
    bad = above or below
    if bad:
        t, v = max(above, key=lambda p: p[1]) if above else min(below, key=lambda p: p[1])
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
        side = f"above the maximum {hi:g}" if above else f"below the minimum {lo:g}"
        return Outcome(False, f"prometheus {shown}: {q} = {v:g} at {when} UTC, {side}: "
                       f"{len(bad)} of {len(points)} samples over {spec['over']} outside "
                       f"{threshold}{tail}", measured=worst, threshold=threshold,
                       details=details)  # fmt: skip
    return Outcome(True, f"prometheus {shown}: {q}: all {len(points)} samples over "
                   f"{spec['over']} within {threshold} (worst {worst:g}){tail}",
                   measured=worst, threshold=threshold, details=details)  # fmt: skip
