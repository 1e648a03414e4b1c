"""Run one declarative check: its kind, its wait policy, its consecutive successes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import kind_module
from .base import Outcome, Target

if TYPE_CHECKING:
    from ..config import CheckSpec

__all__ = ["run_check"]


def run_check(
    check: CheckSpec,
    target: Target,
    on_attempt: Callable[[int, Outcome], None] | None = None,
) -> Outcome:
    """The check's Outcome, with its rollback flag settled."""
    module = kind_module(check.kind)
    spec = check.spec
    if "timeout" in spec:
        target = target.with_timeout(spec["timeout"])

    def once() -> Outcome:
        start = time.monotonic()
        outcome: Outcome = module.run(spec, target)
        outcome.details.setdefault("duration_s", round(time.monotonic() - start, 3))
        return outcome

    wait = spec.get("wait")
    successes = int(spec.get("consecutive_successes", 1))
    if wait is not None or successes > 1:
        from .wait import parse_wait, run_with_wait

        policy = parse_wait(wait or {}, check.where)
        outcome = run_with_wait(
            once,
            interval=policy.interval,
            timeout=policy.timeout,
            retries=policy.retries,
            start_period=policy.start_period,
            consecutive_successes=successes,
            backoff=policy.backoff,
            max_interval=policy.max_interval,
            on_attempt=on_attempt,
        )
    else:
        outcome = once()
    if check.trigger is not None:
        outcome.rollback = check.trigger == "rollback"
    elif outcome.rollback is None:
        outcome.rollback = bool(module.ROLLBACK)
    return outcome
