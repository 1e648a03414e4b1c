"""A fleet's quorum: how many targets must be healthy, and how many may fail per label.

``min_healthy = "100%"`` (the default), ``"95%"`` or a count; ``max_unhealthy_per_label =
{ zone = 1 }``: at most one unhealthy target in each zone. The measured value reads
"1,980 of 2,000 healthy"; the message names the worst targets (up to 20) with a one-line
reason each; the details carry every target's outcome.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .aio_net import Result
from .base import CheckConfigError, Outcome
from .targets import Member

__all__ = ["decide", "required", "validate"]

SHOWN = 20
# the order in which unhealthy targets are shown: no answer at all first
_RANK = {"refused": 0, "timeout": 1, "dns": 2, "connection": 3, "TLS": 4, "status": 5}
_RANK.update({"body": 6, "latency": 7})


def _percent(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1])
        except ValueError:
            return None
        return number if 0 < number <= 100 else None
    return None


def validate(spec: Mapping[str, Any], where: str) -> None:
    value = spec.get("min_healthy", "100%")
    is_count = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if not is_count and _percent(value) is None:
        raise CheckConfigError(
            f'{where}: key \'min_healthy\': expected "100%", "95%" or a count >= 1, found {value!r}'
        )
    limits = spec.get("max_unhealthy_per_label", {})
    if not isinstance(limits, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in limits.values()
    ):
        raise CheckConfigError(
            f"{where}: key 'max_unhealthy_per_label': expected a table of counts >= 0 "
            f"such as {{ zone = 1 }}, found {limits!r}"
        )


def required(spec: Mapping[str, Any], total: int) -> tuple[int, str]:
    """How many of ``total`` must be healthy, and the rule as written."""
    value = spec.get("min_healthy", "100%")
    percent = _percent(value)
    if percent is None:
        return int(value), f"{int(value):,}"
    need = math.ceil(total * percent / 100 - 1e-9)
    return need, f"{need:,} = {percent:g}%"


def _label_problems(
    spec: Mapping[str, Any], members: Sequence[Member], results: Sequence[Result]
) -> list[str]:
    problems = []
    for label, limit in spec.get("max_unhealthy_per_label", {}).items():
        counts = Counter(
            m.labels.get(label, f"(no {label})")
            for m, r in zip(members, results, strict=True)
            if not r.healthy
        )
        for value, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if count > limit:
                problems.append(f"{label}={value}: {count} unhealthy (max {limit})")
    return problems


def _line(member: Member, result: Result) -> str:
    return f"{member.target} {result.reason}: {result.message}"


def decide(
    spec: Mapping[str, Any], members: Sequence[Member], results: Sequence[Result], origin: str
) -> Outcome:
    """The fleet check's Outcome: the quorum's verdict and every target's result."""
    total = len(results)
    healthy = sum(1 for r in results if r.healthy)
    need, rule = required(spec, total)
    problems = _label_problems(spec, members, results)
    passed = healthy >= need and not problems
    message = f"{healthy:,} of {total:,} healthy (need {rule})"
    if problems:
        message += "; " + "; ".join(problems)
    bad = [(m, r) for m, r in zip(members, results, strict=True) if not r.healthy]
    bad.sort(key=lambda mr: (_RANK.get(mr[1].reason, 3), -(mr[1].latency_ms or 0)))
    if bad:
        shown = "; ".join(_line(m, r) for m, r in bad[:SHOWN])
        more = f"; and {len(bad) - SHOWN:,} more" if len(bad) > SHOWN else ""
        message += f"; unhealthy: {shown}{more}"
    reasons = Counter(r.reason for r in results if not r.healthy)
    details: dict[str, Any] = {
        "healthy": healthy,
        "total": total,
        "required": need,
        "source": origin,
        "unhealthy_by_reason": dict(reasons),
        "targets": [
            {
                "target": m.target,
                "labels": dict(m.labels),
                "healthy": r.healthy,
                "reason": r.reason,
                "message": r.message,
                "latency_ms": r.latency_ms,
            }
            for m, r in zip(members, results, strict=True)
        ],
    }
    return Outcome(
        passed=passed,
        message=message,
        measured=f"{healthy:,} of {total:,} healthy",
        threshold=f">= {rule} healthy",
        details=details,
    )
