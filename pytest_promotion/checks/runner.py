"""Run one declarative check: its kind, its wait policy, its consecutive successes.

The one error net of every check kind is here (:func:`run_once`, with base.crash_outcome):
a kind that raises instead of returning its Outcome fails its gate with one redacted line,
and the run blocks (no evidence about the environment is never a rollback, never a pass).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .base import CheckFailed, Outcome, Target, crash_outcome
from .registry import Kind, registry
from .wait import policy_for, wait_until_healthy

if TYPE_CHECKING:
    from ..check_spec import CheckSpec

__all__ = ["run_check", "run_once"]

# How long past its own timeout a third-party kind may run before its gate fails: the
# built-in kinds end their sockets at the deadline themselves.
_GRACE_S = 1.0


def run_once(kind: Kind, spec: dict[str, object] | object, target: Target) -> Outcome:
    """One attempt of ``kind`` within the net: what it returned, its CheckFailed as a
    failed Outcome, or anything else it raised as a crash."""
    start = time.monotonic()
    try:
        outcome = _call(kind, spec, target)
    except CheckFailed as failed:
        outcome = failed.outcome()
    except Exception as exc:  # a bug: fail the gate in one line, not with a traceback
        return crash_outcome(exc, target.secrets, _culprit(kind))
    if not isinstance(outcome, Outcome):
        found = type(outcome).__name__
        return crash_outcome(
            TypeError(f"run() returned {found}, not an Outcome"), (), _culprit(kind)
        )
    outcome.details.setdefault("duration_s", round(time.monotonic() - start, 3))
    return outcome


def _call(kind: Kind, spec: object, target: Target) -> Outcome:
    if kind.builtin:
        return kind.run(spec, target)  # type: ignore[arg-type]
    # A third-party kind gets the same deadline as ours, enforced here.
    from .deadlines import run_within

    deadline = target.deadline() + _GRACE_S
    try:
        return run_within(lambda: kind.run(spec, target), deadline, f"{kind.name} check")  # type: ignore[arg-type]
    except TimeoutError:  # no answer is no evidence: a block, like a crash
        return Outcome(
            passed=False,
            message=f"{kind.name} check did not finish within its timeout ({target.timeout:g} s)",
            rollback=False,
            details={"crashed": True},
        )


def _culprit(kind: Kind) -> str:
    if kind.builtin:
        return f"{kind.name} check crashed"
    return f"{kind.name} check crashed, a bug in {kind.source}"


def run_check(
    check: CheckSpec,
    target: Target,
    on_attempt: Callable[[int, Outcome], None] | None = None,
) -> Outcome:
    """The check's Outcome, with its rollback flag settled."""
    kind = registry.get(check.kind)
    spec = check.spec
    if "timeout" in spec:
        target = target.with_timeout(spec["timeout"])

    def once(left: float | None = None) -> Outcome:
        return run_once(kind, *_within(spec, target, left))

    policy = policy_for(spec, check.where)
    outcome = (
        once()
        if policy is None
        else wait_until_healthy(once, policy, on_attempt=on_attempt, bounded=once)
    )
    crashed = bool(outcome.details.get("crashed"))
    if crashed or outcome.details.get("fleet_unseen"):
        outcome.rollback = False  # no evidence about the environment: block, never roll back
        if crashed and kind.builtin:
            outcome.message += ": a bug in pytest-promotion, please report it"
    elif check.trigger is not None:
        outcome.rollback = check.trigger == "rollback"
    elif outcome.rollback is None:
        outcome.rollback = bool(kind.ROLLBACK)
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
