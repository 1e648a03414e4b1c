"""The watch window: after a promote, measure the environment every interval for the
window and decide as Argo Rollouts' background analysis does.

- more failed measurements than ``failure_limit``: **rollback** (executed when asked, with
  the environment's rollback command; recorded as a rollback record of this version);
- more errors/inconclusive measurements in a row than ``consecutive_error_limit``: **block
  and hold** (a provider outage is not evidence against the release, and never a pass);
- the whole window measured without either: **promote**;
- Ctrl-C or SIGTERM: the watch ends incomplete, **block**, nothing measured lost.

At most one automatic rollback: a rollback or a hold puts a hold record on the
environment; while it is on, the watch never rolls back again (a person releases it with
``promotion release-hold``). Measurements are streamed to the journal, not kept: memory is
the same for 10 measurements and for 8,640.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..checks.pool import ProbePool
from ..redact import redact
from ..rollback import RenderError, render, run_rollback
from .journal import Journal
from .measure import Measurement, Watched, measure
from .relative import Baselines
from .settings import WatchSettings

if TYPE_CHECKING:
    from ..config import Environment
    from .pygates import PythonGates

__all__ = ["TAIL", "Watch", "WatchResult"]

TAIL = 100  # measurements kept for the reports; the ledger has every one


@dataclass
class WatchResult:
    environment: str
    version: str | None
    settings: WatchSettings
    decision: str = "block"  # promote | rollback | block
    reason: str = ""
    measured: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    complete: bool = False
    interrupted: str | None = None
    hold: str | None = None  # what happened to the hold, one sentence
    rollback_argv: str | None = None
    rollback_result: dict[str, Any] | None = None
    watch_record: str | None = None
    ledger: str = ""
    last: dict[str, str] = field(default_factory=dict)  # gate -> its last value
    tail: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=TAIL))
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment, "version": self.version,
            "settings": self.settings.to_json(), "decision": self.decision,
            "reason": self.reason, "measured": self.measured, "counts": dict(self.counts),
            "complete": self.complete, "interrupted": self.interrupted, "hold": self.hold,
            "rollback": {"argv": self.rollback_argv, "result": self.rollback_result},
            "watch_record": self.watch_record, "ledger": self.ledger, "last": dict(self.last),
            "measurements": list(self.tail), "measurements_kept": TAIL,
            "warnings": list(self.warnings),
        }  # fmt: skip


class Watch:
    """One watch of ``environment``. ``run()`` returns its :class:`WatchResult`."""

    def __init__(
        self,
        environment: Environment,
        checks: Sequence[Watched],
        settings: WatchSettings,
        journal: Journal,
        *,
        previous_version: str | None = None,
        execute: bool = False,
        baselines: Baselines | None = None,
        concurrency: int = 64,
        progress: Callable[[str], None] = lambda line: None,
        stop: threading.Event | None = None,
        caller_executes: bool = False,
        decision_record: str | None = None,
        python: PythonGates | None = None,
    ) -> None:
        self.environment, self.checks, self.settings = environment, checks, settings
        self.journal, self.previous_version, self.execute = journal, previous_version, execute
        self.baselines = baselines or Baselines()
        self.concurrency, self.progress = max(1, min(concurrency, len(checks) or 1)), progress
        self.stop = stop or threading.Event()
        self.caller_executes, self.decision_record = caller_executes, decision_record
        self.python = python  # the Python gates marked watch=True (a child pytest)
        self.result = WatchResult(environment.name, journal.version, settings,
                                  counts=dict.fromkeys(("successful", "failed", "error",
                                                        "inconclusive"), 0))  # fmt: skip
        self._errors_in_a_row = 0

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> WatchResult:
        r, s = self.result, self.settings
        r.ledger = self.journal.shown
        python = self.python
        if python is not None:
            python.discover(self.stop)
            if self.stop.is_set():
                self._interrupted(self._stop_reason())
                return self._end([])
        if not self.checks and (python is None or not python.active):
            r.reason = f"{self.environment.name} has no health check to watch"
            return self._end([])
        names = [w.check.id for w in self.checks] + (python.names if python else [])
        self.journal.start({"settings": s.to_json(), "gates": names,
                            "previous_version": self.previous_version,
                            "decision_record": self.decision_record})  # fmt: skip
        r.watch_record = self.journal.watch_id
        pool = ProbePool(self.concurrency, name="promotion-watch")
        try:
            self._loop(pool)
        except KeyboardInterrupt:
            self._interrupted("interrupted (Ctrl-C or SIGTERM)")
        except Exception as exc:  # a terminal that fails, a bug: never a traceback, nor a pass
            text = redact(" ".join(str(exc).split()), self.environment.secrets)[:300]
            self._interrupted(f"the watch failed: {type(exc).__name__}: {text}")
        finally:
            pool.cancel_pending()
            pool.close()
        return self._end(self._records())

    def _loop(self, pool: ProbePool) -> None:
        s, r = self.settings, self.result
        if s.initial_delay and self.stop.wait(s.initial_delay):
            return self._interrupted("stopped during the initial delay")
        target = self.environment.target()
        next_at = time.monotonic()
        for n in range(1, s.measurements + 1):
            m = measure(self.checks, target, pool, self.baselines, n, s.measurements,
                        self.python, self.stop)  # fmt: skip
            if m is None:  # stopped while the Python gates ran: abandoned, not counted
                return self._interrupted(self._stop_reason())
            self._count(m)
            if self._decided(m):
                return None
            if n == s.measurements:
                break
            next_at += s.interval
            if self.stop.wait(max(0.0, next_at - time.monotonic())):
                return self._interrupted(self._stop_reason())
        r.complete = True
        r.decision = "promote"
        r.reason = (
            f"watched {r.measured} measurements over {_span(s.duration)}: "
            f"{r.counts['failed']} failed (limit {s.failure_limit}), "
            f"{r.counts['error'] + r.counts['inconclusive']} without data"
        )
        return None

    def _stop_reason(self) -> str:
        return getattr(self.stop, "reason", None) or "stopped"

    def _count(self, m: Measurement) -> None:
        r = self.result
        body = m.to_json()
        m.at = self.journal.measurement(body, m.state)
        r.measured = m.n
        r.counts[m.state] += 1
        self._errors_in_a_row = (
            self._errors_in_a_row + 1 if m.state in ("error", "inconclusive") else 0
        )
        for g in m.gates:
            r.last[g.id] = g.value_text()
        r.tail.append({"n": m.n, "at": m.at, "state": m.state,
                       "values": {g.id: g.measured for g in m.gates},
                       "failed": [g.id for g in m.gates if g.state != "successful"]})  # fmt: skip
        self.progress(self._line(m))

    def _line(self, m: Measurement) -> str:
        s, r = self.settings, self.result
        values = ", ".join(f"{gid.split('::', 1)[-1]}={v}" for gid, v in r.last.items())
        return (
            f"watch {self.environment.name}: measurement {m.n} of {m.of}: {m.state}; "
            f"failures {r.counts['failed']} (limit {s.failure_limit}), errors in a row "
            f"{self._errors_in_a_row} (limit {s.consecutive_error_limit}); {values}"
        )

    def _decided(self, m: Measurement) -> bool:
        s, r = self.settings, self.result
        if r.counts["failed"] > s.failure_limit:
            bad = [g for g in m.gates if g.state == "failed"]
            r.decision = "rollback" if any(g.rollback for g in bad) or not bad else "block"
            why = "; ".join(f"{g.id}: {g.message}" for g in bad[:3])
            r.reason = (
                f"{r.counts['failed']} failed measurements (failure_limit {s.failure_limit}), "
                f"the last at measurement {m.n} of {m.of}: {why}"
            )
            return True
        if self._errors_in_a_row > s.consecutive_error_limit:
            bad = [g for g in m.gates if g.state in ("error", "inconclusive")]
            why = "; ".join(f"{g.id}: {g.message}" for g in bad[:3])
            r.decision = "block"
            r.reason = (
                f"{self._errors_in_a_row} measurements in a row could not measure "
                f"(consecutive_error_limit {s.consecutive_error_limit}), the last at "
                f"measurement {m.n} of {m.of}: {why}; not evidence against the release, "
                f"never a pass: held"
            )
            return True
        return False

    def _interrupted(self, why: str) -> None:
        r = self.result
        r.interrupted = why
        r.decision = "block"
        r.reason = (
            f"the watch ended incomplete ({why}) after measurement {r.measured} of "
            f"{self.settings.measurements}: a watch cut short is never a promote"
        )

    # -- the end -----------------------------------------------------------------------
    def _records(self) -> list[Any]:
        """The rollback (executed once, when asked and no hold is on), the hold, the
        watch's end: records for the journal."""
        r, j = self.result, self.journal
        records = []
        held = r.decision == "rollback" or (r.decision == "block" and not r.interrupted)
        existing = j.hold() if held else None
        if r.decision == "rollback":
            records += self._rollback(existing)
        if held and r.measured:
            if existing is not None:
                r.hold = f"{r.environment} was already on hold (record {existing.id[:12]})"
            elif j.can_hold:
                hold = j.new("hold", "on", {"reason": r.reason, "decision": r.decision})
                records.append(hold)
                r.hold = (
                    f"{r.environment} is on hold (record {hold.id[:12]}): the next promotion "
                    f"to it is blocked until `promotion release-hold --env {r.environment} "
                    f"--reason ...`"
                )
            else:
                r.hold = f"no hold could be recorded: {j.why_not}"
                r.warnings.append(r.hold)
        records.append(j.new("watch", r.decision, {
            "reason": r.reason, "measured": r.measured, "counts": r.counts,
            "complete": r.complete, "interrupted": r.interrupted, "hold": r.hold,
            "rollback": {"argv": r.rollback_argv, "result": r.rollback_result},
            "last": r.last, "settings": self.settings.to_json(),
        }))  # fmt: skip
        return records

    def _rollback(self, existing: Any) -> list[Any]:
        """The rollback record: ``done`` / ``failed`` when executed here, else ``not
        executed`` (with why): either way the version has a rollback against it in this
        environment, so it is no longer a last-known-good or an upstream promote."""
        r = self.result
        argv, why = self._argv(existing)
        if argv is not None and self.caller_executes:
            r.reason += "; rolled back by the gate run (--promotion-rollback=execute)"
            return []
        body: dict[str, Any] = {"to_version": self.previous_version, "automatic": True,
                                "argv": shlex.split(r.rollback_argv) if r.rollback_argv else None}  # fmt: skip
        if argv is None or not self.execute:
            why = why or "not asked to execute it (--rollback execute)"
            r.reason += (
                f"; rollback command (not executed: {why}): {r.rollback_argv}"
                if (r.rollback_argv and not why.startswith("not rolled back"))
                else f"; {why}"
            )
            return [self.journal.new("rollback", "not executed", {**body, "why": why,
                                                                  "reason": r.reason})]  # fmt: skip
        env = self.environment
        result = run_rollback(argv, env.rollback_timeout, cwd=str(env.rootdir))
        result.output = redact(result.output, env.secrets)
        r.rollback_result = result.to_json()
        ok = result.returncode == 0 and not result.error
        state = "done" if ok else f"FAILED ({result.error or f'exit {result.returncode}'})"
        r.reason += f"; rolled back to {self.previous_version}: {state}"
        return [self.journal.new("rollback", "done" if ok else "failed",
                                 {**body, "result": r.rollback_result, "reason": r.reason})]  # fmt: skip

    def _argv(self, existing: Any) -> tuple[list[str] | None, str]:
        """(the rendered command, or None and why not)."""
        r, env = self.result, self.environment
        if existing is not None:
            since = str(existing.recorded_at)[:16].replace("T", " ")
            return None, (
                f"not rolled back automatically: {env.name} is on hold since {since} "
                f"(record {existing.id[:12]}): at most one automatic rollback"
            )
        if env.rollback is None:
            return None, f"{env.name} has no rollback command: roll back by hand"
        values = {"env": env.name, "version": r.version, "previous_version": self.previous_version}
        try:
            argv = render(env.rollback, values)
        except RenderError as exc:
            return None, f"the rollback command cannot be rendered: {exc}"
        r.rollback_argv = redact(shlex.join(argv), env.secrets)
        return argv, ""

    def _end(self, records: list[Any]) -> WatchResult:
        r = self.result
        if not r.reason:
            r.reason = "nothing was watched"
        r.warnings += self.journal.finish(records)
        return r


def _span(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
