"""Relative criteria: a gate's measured value against the last good releases' (Keptn's
comparison, Kayenta's baseline), always beside an absolute bound.

    [[environments.prod.checks]]
    name = "p95"
    prometheus = "{prometheus}"
    query = 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))'
    max = 0.5                       # the absolute bound: required
    max_increase = "50%"            # against the baseline
    min_delta = 0.02                # noise floor, in the gate's unit (s here)
    baseline_runs = 3               # the default
    on_missing_baseline = "fail"    # or "pass": required wherever a relative key is used

The baseline is the median of the gate's measured values in the last ``baseline_runs``
promotes of this environment whose version was neither rolled back nor failed a gate
later there, nor invalidated (from the ledger); the version being judged is never its own
baseline. A relative limit alone would let a chain of +9 % releases drift: the absolute
bound stops it. A missing baseline is never a silent pass: ``on_missing_baseline`` says.
A relative failure is evidence (a rollback trigger like the gate's own); a missing baseline
with ``"fail"`` blocks (it is not evidence against the release).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..checks.base import CheckConfigError, Outcome

__all__ = [
    "BOUNDS",
    "KEYS",
    "Baseline",
    "Baselines",
    "apply",
    "has_relative",
    "keys_for",
    "validate",
]

# the kinds with a numeric measured value, and their absolute bounds
BOUNDS: dict[str, tuple[str, ...]] = {
    "prometheus": ("min", "max"),
    "http": ("max_latency_ms",),
    "tls": ("min_days_valid",),
    "redis": ("max_memory_used_ratio",),
    "postgres": ("max_replication_lag_s",),
}
KEYS: dict[str, type | tuple[type, ...]] = {
    "max_increase": str,
    "max_decrease": str,
    "min_delta": float,
    "baseline_runs": int,
    "on_missing_baseline": str,
}
_CRITERIA = ("max_increase", "max_decrease")
MAX_RUNS = 50


def keys_for(kind: str) -> dict[str, type | tuple[type, ...]]:
    """The relative keys a kind accepts (none for a kind without a numeric value; the
    benchmark kind keeps its own ``on_missing_baseline``)."""
    return dict(KEYS) if kind in BOUNDS else {}


def has_relative(spec: Mapping[str, Any]) -> bool:
    return any(k in spec for k in _CRITERIA)


def percent(value: object, where: str, key: str) -> float:
    """``"10%"`` -> 0.10; one line naming the key otherwise."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        if not text.endswith("%"):
            raise ValueError
        number = float(text[:-1])
    except ValueError:
        raise CheckConfigError(
            f'{where}: key {key!r}: expected a percentage like "10%", found {value!r}'
        ) from None
    if not 0 <= number <= 1000:
        raise CheckConfigError(f"{where}: key {key!r}: expected 0% to 1000%, found {value!r}")
    return number / 100


def validate(kind: str, spec: Mapping[str, Any], where: str) -> None:
    """The relative keys of one check: a criterion needs an absolute bound and a stated
    ``on_missing_baseline``; the other keys only make sense with a criterion."""
    used = [k for k in KEYS if k in spec]
    if not used:
        return
    if kind not in BOUNDS:
        raise CheckConfigError(
            f"{where}: key {used[0]!r}: a {kind} check has no numeric measured value to compare"
        )
    if not has_relative(spec):
        raise CheckConfigError(
            f"{where}: key {used[0]!r}: expected with max_increase or max_decrease, found it alone"
        )
    for key in _CRITERIA:
        if key in spec:
            percent(spec[key], where, key)
    bounds = BOUNDS[kind]
    if not any(b in spec for b in bounds):
        raise CheckConfigError(
            f"{where}: key {next(k for k in _CRITERIA if k in spec)!r}: expected beside an "
            f"absolute bound ({' or '.join(bounds)}), found none: a relative limit alone lets "
            f"releases drift"
        )
    missing = spec.get("on_missing_baseline")
    if missing not in ("pass", "fail"):
        found = "nothing" if missing is None else repr(missing)
        raise CheckConfigError(
            f'{where}: key \'on_missing_baseline\': expected "pass" or "fail" beside a relative '
            f"criterion, found {found}"
        )
    if "min_delta" in spec and not spec["min_delta"] >= 0:
        raise CheckConfigError(
            f"{where}: key 'min_delta': expected a number >= 0, found {spec['min_delta']!r}"
        )
    runs = spec.get("baseline_runs", 3)
    if not 1 <= runs <= MAX_RUNS:
        raise CheckConfigError(
            f"{where}: key 'baseline_runs': expected 1 to {MAX_RUNS}, found {runs!r}"
        )


@dataclass(frozen=True)
class Baseline:
    """The median of a gate's values in earlier good promotes, and where they came from."""

    value: float
    records: tuple[str, ...]  # record ids, newest first
    versions: tuple[str | None, ...]
    wanted: int

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "records": list(self.records),
            "versions": list(self.versions),
            "runs": len(self.records),
            "wanted": self.wanted,
        }

    def text(self) -> str:
        ids = ", ".join(r[:8] for r in self.records)
        runs = len(self.records)
        of = f" of {self.wanted} wanted" if runs < self.wanted else ""
        return (
            f"baseline {self.value:g} = median of {runs} run{'s' if runs != 1 else ''}{of} ({ids})"
        )


@dataclass
class Baselines:
    """Per gate id: [(record id, version, value)] of the good promotes, newest first; or
    why there is no history to read (ledger off or unreachable)."""

    runs: dict[str, list[tuple[str, str | None, float]]] = field(default_factory=dict)
    unavailable: str | None = None

    def get(self, gate_id: str, wanted: int) -> Baseline | None:
        found = self.runs.get(gate_id, [])[:wanted]
        if not found:
            return None
        return Baseline(
            value=float(statistics.median(v for _, _, v in found)),
            records=tuple(r for r, _, _ in found),
            versions=tuple(v for _, v, _ in found),
            wanted=wanted,
        )

    def missing(self, gate_id: str) -> str:
        if self.unavailable:
            return f"no baseline ({self.unavailable})"
        return f"no baseline: no earlier good promote measured {gate_id}"


def number(value: object) -> float | None:
    """A measured value as a number: records keep it as text (``"12.5 ms"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value.split()[0])
        except ValueError:
            return None
    return None


def _with(threshold: str | None, extra: str) -> str:
    return f"{threshold}; {extra}" if threshold else extra


def apply(kind: str, spec: Mapping[str, Any], gate_id: str, outcome: Outcome,
          baselines: Baselines) -> Outcome:  # fmt: skip
    """The outcome judged against its baseline too (unchanged when the check has no
    relative criterion). The baseline and its records are in the threshold (every report
    shows it beside the measured value) and in ``details["baseline"]``."""
    if not has_relative(spec) or kind not in BOUNDS:
        return outcome
    wanted = int(spec.get("baseline_runs", 3))
    baseline = baselines.get(gate_id, wanted)
    measured = number(outcome.measured)
    details = dict(outcome.details)
    if baseline is None:
        why = baselines.missing(gate_id)
        mode = spec.get("on_missing_baseline")
        details["baseline"] = {"value": None, "records": [], "why": why}
        threshold = _with(outcome.threshold, f"no baseline: {mode} (on_missing_baseline)")
        if mode == "pass" or not outcome.passed:
            note = f"; {why}: on_missing_baseline = {mode}" if outcome.passed else f"; {why}"
            return replace(outcome, message=outcome.message + note, details=details,
                           threshold=threshold)  # fmt: skip
        return replace(outcome, passed=False, rollback=False, details=details, threshold=threshold,
                       message=f"{outcome.message}; {why}: on_missing_baseline = fail")  # fmt: skip
    details["baseline"] = baseline.to_json()
    if measured is None:
        if not outcome.passed:
            return replace(outcome, details=details)
        return replace(outcome, passed=False, rollback=False, details=details,
                       message=f"{outcome.message}; no numeric value to compare with the "
                               f"{baseline.text()}")  # fmt: skip
    failures, limits = judge(spec, measured, baseline.value)
    ids = ", ".join(r[:8] for r in baseline.records)
    threshold = _with(outcome.threshold, f"{' and '.join(limits)} (records {ids})")
    if not failures:
        return replace(outcome, threshold=threshold, details=details,
                       message=f"{outcome.message} ({baseline.text()})")  # fmt: skip
    message = f"{outcome.message}; {'; '.join(failures)} ({baseline.text()})"
    # evidence like an absolute failure: the rollback flag run_check settled stands
    return replace(outcome, passed=False, threshold=threshold, details=details, message=message)


def judge(spec: Mapping[str, Any], measured: float, base: float) -> tuple[list[str], list[str]]:
    """(why it fails, the relative limits as text)."""
    floor = float(spec.get("min_delta", 0.0))
    failures: list[str] = []
    limits: list[str] = []
    delta = measured - base
    change = f"{delta / base:+.1%}" if base else ("+inf%" if delta > 0 else "-inf%")
    if "max_increase" in spec:
        p = percent(spec["max_increase"], "check", "max_increase")
        limit = base * (1 + p)
        limits.append(f"<= {limit:g} (baseline {base:g} +{p:.0%})")
        if measured > limit and delta > floor:
            failures.append(
                f"{measured:g} is {change} over the baseline {base:g}, more than "
                f"max_increase {spec['max_increase']}"
                + (f" (and more than min_delta {floor:g})" if floor else "")
            )
    if "max_decrease" in spec:
        p = percent(spec["max_decrease"], "check", "max_decrease")
        limit = base * (1 - p)
        limits.append(f">= {limit:g} (baseline {base:g} -{p:.0%})")
        if measured < limit and -delta > floor:
            failures.append(
                f"{measured:g} is {change} under the baseline {base:g}, more than "
                f"max_decrease {spec['max_decrease']}"
                + (f" (and more than min_delta {floor:g})" if floor else "")
            )
    return failures, limits


def merge_runs(into: dict[str, list[tuple[str, str | None, float]]],
               record_id: str, version: str | None, gates: Sequence[Mapping[str, Any]]) -> None:  # fmt: skip
    """Add one good promote's passed, numeric gate values (the caller goes newest first)."""
    for gate in gates:
        value = number(gate.get("measured"))
        if value is not None and gate.get("outcome") == "passed":
            into.setdefault(str(gate.get("id")), []).append((record_id, version, value))
            if gate.get("name"):  # gate.measure() finds its history by the gate's name
                into.setdefault(f"name:{gate['name']}", []).append((record_id, version, value))


def apply_for_run(check: Any, outcome: Outcome) -> Outcome:
    """The gate run's seam (items.probe_check): a check with a relative criterion judged
    against the baselines of this run's ledger (read once per process)."""
    if not has_relative(check.spec) or check.kind not in BOUNDS:
        return outcome
    from .baselines import for_run

    return apply(check.kind, check.spec, check.id, outcome, for_run(check.env))


def measure_relative(name: str, number: float, threshold: str | None,
                     **criteria: Any) -> tuple[str | None, str | None, bool]:  # fmt: skip
    """``gate.measure(..., max_increase="10%", on_missing_baseline="fail")``: (a failure
    message or None, the threshold with the baseline, whether a failure blocks rather than
    rolls back). The baseline is the gate's values, by name, in the last good promotes."""
    spec = {k: v for k, v in criteria.items() if v is not None}
    where = f"gate {name}"
    try:
        validate("prometheus", spec, where)  # the same rules, with min/max as the bounds
    except CheckConfigError as exc:
        return str(exc), threshold, True
    from .baselines import for_any_run

    outcome = Outcome(True, "", measured=number, threshold=threshold)
    judged = apply("prometheus", spec, f"name:{name}", outcome, for_any_run())
    if judged.passed:
        return None, judged.threshold, False
    return f"{name}: {judged.message.lstrip('; ')}", judged.threshold, judged.rollback is False
