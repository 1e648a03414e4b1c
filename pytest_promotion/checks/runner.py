"""Run one declarative check: its kind, its wait policy, its consecutive successes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..redact import redact, redact_url
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

    def once(left: float | None = None) -> Outcome:
        start = time.monotonic()
        try:
            outcome: Outcome = module.run(*_within(spec, target, left))
        except Exception as exc:  # a bug: fail the gate in one line, not with a traceback
            return _crashed(check, target, exc)
        outcome.details.setdefault("duration_s", round(time.monotonic() - start, 3))
        return outcome

    policy = policy_for(spec, check.where)
    outcome = (
        once()
        if policy is None
        else wait_until_healthy(once, policy, on_attempt=on_attempt, bounded=once)
    )
    if outcome.details.get("crashed"):
        outcome.rollback = False  # no evidence about the environment: block, never roll back
    elif check.trigger is not None:
        outcome.rollback = check.trigger == "rollback"
    elif outcome.rollback is None:
        outcome.rollback = bool(module.ROLLBACK)
    return outcome


def _within(
    spec: Mapping[str, Any], target: Target, left: float | None
) -> tuple[Mapping[str, Any], Target]:
    """The spec and target of one attempt that must end within ``left`` seconds (the time
    a wait has left): its timeout, the check's own or the target's, cut to that."""
    if left is None:
        return spec, target
    own = float(spec.get("timeout", math.inf))
    if own <= left and target.timeout <= left:
        return spec, target
    return {**spec, "timeout": min(own, left)}, target.with_timeout(min(target.timeout, left))


def _crashed(check: CheckSpec, target: Target, exc: Exception) -> Outcome:
    """A check module raised instead of returning its Outcome: that is a bug in this
    project, and it must fail the gate (never pass it) with a line a user can report."""
    text = redact(redact_url(f"{type(exc).__name__}: {exc}"), target.secrets)
    first = text.splitlines()[0] if text else type(exc).__name__
    return Outcome(
        passed=False,
        message=f"{check.kind} check crashed ({first}): a bug in pytest-promotion, please report it",
        rollback=False,
        details={"crashed": True},
    )
