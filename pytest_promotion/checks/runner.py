"""Run one declarative check: its kind, its wait policy, its consecutive successes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import kind_module
from .base import Outcome, Target
from .wait import policy_for, wait_until_healthy

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

    policy = policy_for(spec, check.where)
    outcome = once() if policy is None else wait_until_healthy(once, policy, on_attempt=on_attempt)
    if check.trigger is not None:
        outcome.rollback = check.trigger == "rollback"
    elif outcome.rollback is None:
        outcome.rollback = bool(module.ROLLBACK)
    return outcome
