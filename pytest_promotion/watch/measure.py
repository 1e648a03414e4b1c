"""One measurement of the watch: every watched gate run once, concurrently, each classified
as Argo Rollouts does.

- ``successful``: the gate passed;
- ``failed``: the gate measured the environment and it is outside its bounds (a status, a
  latency, a value over its bound or its baseline, a target down): evidence;
- ``error``: the gate could not measure (a provider down, a timeout to Prometheus, a
  crash of the check): no evidence either way;
- ``inconclusive``: the gate measured no data (an empty vector, NaN); counted with errors.

A measurement is ``failed`` when any gate failed, else ``error`` when any erred, else
``inconclusive`` when any had no data, else ``successful``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..checks.base import Outcome, Target
from ..checks.runner import run_check
from ..redact import redact
from . import relative
from .relative import Baselines

if TYPE_CHECKING:
    from ..check_spec import CheckSpec
    from ..checks.pool import ProbePool
    from ..config import Environment
    from .pygates import PythonGates

__all__ = [
    "STATES",
    "WATCH_KINDS",
    "GateResult",
    "Measurement",
    "Watched",
    "classify",
    "measure",
    "watched_checks",
]

STATES = ("successful", "failed", "error", "inconclusive")
# the health kinds the watch re-runs (policy, quality and file kinds judge the release
# once, at the gate run)
WATCH_KINDS = frozenset({"http", "tls", "tcp", "redis", "postgres", "prometheus", "grafana"})
_NO_DATA = ("no data", "returned nan", "no targets")


@dataclass
class GateResult:
    id: str
    state: str
    measured: float | str | None
    unit: str
    threshold: str | None
    message: str
    rollback: bool  # a failure of this gate calls for a rollback (its trigger)
    baseline: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        # by hand, not dataclasses.asdict (a deep copy): 200 of these per measurement
        data: dict[str, Any] = {"id": self.id, "state": self.state, "measured": self.measured,
                                "unit": self.unit, "threshold": self.threshold,
                                "rollback": self.rollback}  # fmt: skip
        if self.state != "successful":
            data["message"] = self.message  # "200 OK in 12 ms" says nothing the value does not
        if self.baseline is not None:
            data["baseline"] = self.baseline
        return data

    def value_text(self) -> str:
        if self.measured is None:
            return self.state
        value = f"{self.measured:g}" if isinstance(self.measured, float) else str(self.measured)
        return value + (f" {self.unit}" if self.unit else "")


@dataclass
class Measurement:
    n: int
    of: int
    at: str  # the ledger's clock when appended (the local clock without a ledger)
    state: str
    gates: list[GateResult] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def calls_for_rollback(self) -> bool:
        return any(g.state == "failed" and g.rollback for g in self.gates)

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "of": self.of, "at": self.at, "state": self.state,
                "duration_s": self.duration_s, "gates": [g.to_json() for g in self.gates]}  # fmt: skip


@dataclass(frozen=True)
class Watched:
    """A check as the watch runs it, and the trigger its config gave it."""

    check: CheckSpec
    trigger: str | None


def watched_checks(environment: Environment) -> tuple[Watched, ...]:
    """The environment's health checks, each run once per measurement: no ``wait`` (the
    interval is the retry), and no trigger while it runs, so that the kind's own judgement
    (could it measure?) survives for :func:`classify`, which applies the trigger after."""
    found = []
    for check in environment.checks:
        if check.kind not in WATCH_KINDS:
            continue
        spec = {k: v for k, v in check.spec.items() if k not in ("wait", "consecutive_successes")}
        found.append(Watched(dataclasses.replace(check, spec=spec, trigger=None), check.trigger))
    return tuple(found)


def classify(watched: Watched, outcome: Outcome) -> GateResult:
    """The gate's state in this measurement."""
    check, trigger = watched.check, watched.trigger
    if outcome.passed:
        state = "successful"
    elif outcome.details.get("crashed") or outcome.rollback is False:
        lowered = outcome.message.lower()
        state = "inconclusive" if any(k in lowered for k in _NO_DATA) else "error"
    else:
        state = "failed"
    baseline = outcome.details.get("baseline")
    return GateResult(
        id=check.id,
        state=state,
        measured=outcome.measured,
        unit=outcome.unit,
        threshold=outcome.threshold,
        message=outcome.message,
        rollback=(trigger or "rollback") == "rollback",
        baseline=baseline if isinstance(baseline, dict) else None,
    )


def overall(gates: Sequence[GateResult]) -> str:
    states = {g.state for g in gates}
    for state in ("failed", "error", "inconclusive"):
        if state in states:
            return state
    return "successful" if gates else "inconclusive"


def _one(watched: Watched, target: Target, baselines: Baselines) -> GateResult:
    check = watched.check
    outcome = run_check(check, target)
    outcome = relative.apply(check.kind, check.spec, check.id, outcome, baselines)
    # as the gate run's items do: the kinds redact, and the environment's secrets again
    outcome.message = redact(outcome.message, target.secrets)
    return classify(watched, outcome)


def _gather(futures: list[tuple[Watched, Future[Any]]], target: Target) -> list[GateResult]:
    gates = []
    for watched, future in futures:
        try:
            gates.append(future.result(timeout=target.timeout * 4 + 30))
        except Exception as exc:  # a bug or a stuck probe: no evidence, never a pass
            gates.append(GateResult(watched.check.id, "error", None, "", None,
                                    f"{watched.check.kind} check did not finish: {exc!r}",
                                    False))  # fmt: skip
    return gates


def measure(
    checks: Sequence[Watched],
    target: Target,
    pool: ProbePool,
    baselines: Baselines,
    n: int,
    of: int,
    python: PythonGates | None = None,
    stop: Any = None,
) -> Measurement | None:
    """Run every gate once on ``pool`` (concurrently, the Python gates' child beside them)
    and classify the round. Each check is bounded by its own timeout, the child by
    ``gate_timeout``; a check whose future raised is an error. None: ``stop`` was set
    while the Python gates ran (the measurement is abandoned, never counted)."""
    start = time.monotonic()
    futures: list[tuple[Watched, Future[Any]]] = [
        (w, pool.submit(functools.partial(_one, w, target, baselines))) for w in checks
    ]
    running = python.begin(stop) if python is not None and python.active else None
    try:
        gates = _gather(futures, target)
    except BaseException:  # Ctrl-C: nothing the child started is left behind
        if running is not None:
            running.abandon()
        raise
    pool.forget_done()  # the pool lives for the whole window: keep nothing of this round
    if python is not None and python.active:
        found = python.measure(running, stop) if running is not None else python.unknown()
        if found is None or (stop is not None and stop.is_set()):
            return None
        gates += found
    return Measurement(n=n, of=of, at="", state=overall(gates), gates=gates,
                       duration_s=round(time.monotonic() - start, 4))  # fmt: skip
