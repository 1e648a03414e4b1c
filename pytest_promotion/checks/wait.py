"""Polling a check until it is ready: intervals with backoff, a total deadline, retries.

A Docker healthcheck (``interval 30s, timeout 10s, retries 3, start_period 40s``) is
``timeout = 10`` on the check and ``wait = { interval = 30, retries = 3,
start_period = 40, backoff = 1 }``: failures during the start period do not count
against the retries, and a success resets the count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .base import CheckConfigError, Outcome, crash_outcome

__all__ = ["WaitPolicy", "parse_wait", "policy_for", "run_with_wait", "wait_until_healthy"]


@dataclass(frozen=True)
class WaitPolicy:
    """How long and how often to poll. Durations in seconds."""

    timeout: float = 60.0
    interval: float = 2.0
    retries: int | None = None
    start_period: float = 0.0
    backoff: float = 1.5
    max_interval: float | None = None
    consecutive_successes: int = 1


# The longest wait a policy may ask for (one day), and the largest backoff factor:
# a finite, bounded value that time.sleep and the deadline arithmetic accept.
MAX_SECONDS = 86400.0
MAX_BACKOFF = 100.0
MAX_RETRIES = 1_000_000

_FIELDS: dict[str, tuple[str, float, float]] = {
    # key: (what is expected, lowest allowed value, highest allowed value)
    "timeout": ("a number of seconds > 0 and <= 86400", 0.0, MAX_SECONDS),
    "interval": ("a number of seconds > 0 and <= 86400", 0.0, MAX_SECONDS),
    "retries": ("an integer >= 1 and <= 1000000", 1, MAX_RETRIES),
    "start_period": ("a number of seconds >= 0 and <= 86400", 0.0, MAX_SECONDS),
    "backoff": ("a number >= 1 and <= 100", 1.0, MAX_BACKOFF),
    "max_interval": ("a number of seconds > 0 and <= 86400", 0.0, MAX_SECONDS),
}


def parse_wait(table: Mapping[str, Any], where: str) -> WaitPolicy:
    """Validate a check's ``wait = {...}`` table into a :class:`WaitPolicy`."""
    if not isinstance(table, Mapping):
        raise CheckConfigError(
            f"{where}: key 'wait': expected a table like {{ timeout = 60, interval = 2 }}, "
            f"found {type(table).__name__}"
        )
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _FIELDS:
            known = ", ".join(_FIELDS)
            raise CheckConfigError(f"{where}: unknown key 'wait.{key}' (known keys: {known})")
        expected, low, high = _FIELDS[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if key == "retries":
            number = number and isinstance(value, int)
        # nan compares false with everything, so finiteness is tested first
        number = number and (isinstance(value, int) or math.isfinite(value))
        strict = key in ("timeout", "interval", "max_interval")
        if not number or value < low or value > high or (strict and value <= low):
            raise CheckConfigError(
                f"{where}: key 'wait.{key}': expected {expected}, found {value!r}"
            )
        values[key] = value
    return WaitPolicy(**values)


def policy_for(spec: Mapping[str, Any], where: str = "check") -> WaitPolicy | None:
    """The policy of a check spec (its ``wait`` table and ``consecutive_successes``).

    None when the check has neither: run it once.
    """
    if "wait" not in spec and "consecutive_successes" not in spec:
        return None
    policy = parse_wait(spec["wait"], where) if "wait" in spec else WaitPolicy()
    return replace(policy, consecutive_successes=int(spec.get("consecutive_successes", 1)))


LAST_ATTEMPT = 1.0  # seconds at most kept for the last attempt of a bounded wait


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def run_with_wait(
    run: Callable[[], Outcome],
    *,
    interval: float,
    timeout: float,
    retries: int | None = None,
    start_period: float = 0.0,
    consecutive_successes: int = 1,
    backoff: float = 1.5,
    max_interval: float | None = None,
    on_attempt: Callable[[int, Outcome], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    bounded: Callable[[float], Outcome] | None = None,
) -> Outcome:
    """Run ``run`` until it passes ``consecutive_successes`` times in a row.

    Gives up when ``timeout`` seconds (in total) have passed or, after ``start_period``,
    when ``retries`` failures in a row have been counted. The pause between attempts
    starts at ``interval`` and grows by ``backoff`` after each failure (up to
    ``max_interval``); a last attempt is made at the deadline. The result is the last
    attempt's Outcome with ``attempts``, ``time_to_ready_s`` and ``elapsed_s`` in its
    details and a message saying how it ended. With ``bounded``, each attempt is
    ``bounded(seconds left until the deadline)`` instead: the last one gets only the time
    left, so the whole wait ends at ``timeout`` (not at ``timeout`` plus a check's own),
    and starts with a tenth of ``timeout`` (at most LAST_ATTEMPT s) left, not at the
    deadline where no check could finish.
    """
    start = clock()
    deadline = start + timeout
    reserve = min(LAST_ATTEMPT, timeout / 10) if bounded is not None else 0.0
    attempt = streak = counted = 0
    pause = interval
    while True:
        attempt += 1
        try:
            outcome = run() if bounded is None else bounded(max(deadline - clock(), 0.001))
        except Exception as exc:  # a crashing check is a failing check, never a pass
            outcome = crash_outcome(exc)
        if on_attempt is not None:
            on_attempt(attempt, outcome)
        now = clock()
        elapsed = now - start
        if outcome.passed:
            streak += 1
            counted = 0
            pause = interval
            if streak >= consecutive_successes:
                return _finish(outcome, attempt, elapsed, ready=True)
        else:
            streak = 0
            if elapsed >= start_period:
                counted += 1
            if retries is not None and counted >= retries:
                return _finish(outcome, attempt, elapsed, ready=False)
        left = deadline - now
        if left <= reserve:  # that was the last attempt
            return _finish(outcome, attempt, elapsed, ready=False)
        sleep(min(pause, left - reserve))
        if not outcome.passed:
            pause = pause * backoff
            if max_interval is not None:
                pause = min(pause, max_interval)


def _finish(last: Outcome, attempts: int, elapsed: float, *, ready: bool) -> Outcome:
    said = f"{_plural(attempts, 'attempt')} in {elapsed:.1f} s"
    head = f"ready after {said}" if ready else f"not ready after {said}"
    details = dict(last.details)
    details.update(
        attempts=attempts,
        time_to_ready_s=round(elapsed, 3) if ready else None,
        elapsed_s=round(elapsed, 3),
    )
    return Outcome(
        passed=ready and last.passed,
        message=f"{head}: {last.message}" if last.message else head,
        measured=last.measured,
        threshold=last.threshold,
        unit=last.unit,
        rollback=last.rollback,
        details=details,
    )


def wait_until_healthy(
    check: Callable[[], Outcome],
    policy: WaitPolicy,
    *,
    on_attempt: Callable[[int, Outcome], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    bounded: Callable[[float], Outcome] | None = None,
) -> Outcome:
    """:func:`run_with_wait` with the settings of a :class:`WaitPolicy`."""
    return run_with_wait(
        check,
        interval=policy.interval,
        timeout=policy.timeout,
        retries=policy.retries,
        start_period=policy.start_period,
        consecutive_successes=policy.consecutive_successes,
        backoff=policy.backoff,
        max_interval=policy.max_interval,
        on_attempt=on_attempt,
        sleep=sleep,
        clock=clock,
        bounded=bounded,
    )
