"""The ``prometheus`` kind's two state checks: every target of a job is up
(``targets_up``), and no alert is firing (``no_firing_alerts``).

A job with no targets, an alert in no known state, or an answer not of the API's shape
fails (no data is never a pass); a target down names its last scrape error when
``/api/v1/targets`` says it.
"""

from __future__ import annotations

import json
from typing import Any

from ..redact import redact, redact_url
from .base import CheckFailed, Outcome, Target
from .prometheus_api import MISSING, api, need, note, one_line, parsing, sample, short

__all__ = ["no_firing_alerts", "targets_up"]


def targets_up(job: str, base: str, target: Target, deadline: float) -> Outcome:
    shown = redact(redact_url(base), target.secrets)
    what = f"prometheus {shown}: job {job!r}"
    query = f"up{{job={json.dumps(job)}}}"
    data, warnings = api(base, "/api/v1/query", target, deadline, what, {"query": query})
    with parsing(what):
        result = need(need(data, dict, "data", what).get("result", MISSING), list, "result", what)
        if not result:
            raise CheckFailed(
                f"prometheus {shown}: job {job!r} has no targets (is the job name right, and is "
                f"it scraped by this Prometheus?)",
                measured="0/0",
                threshold="all up",
            )
        samples = [sample(s, f"result[{i}]", what) for i, s in enumerate(result)]
        down = sorted(
            one_line(metric.get("instance", "?")) for metric, raw in samples if raw != "1"
        )
    total = len(samples)
    measured = f"{total - len(down)}/{total}"
    details: dict[str, Any] = {"warnings": warnings} if warnings else {}
    if not down:
        return Outcome(
            True,
            f"prometheus {shown}: job {job!r}: all {total} target{'s' if total != 1 else ''} up"
            f"{note(warnings)}",
            measured=measured,
            threshold="all up",
            details=details,
        )
    errors = _last_errors(job, base, target, deadline)
    listed = "; ".join(f"{inst} ({errors[inst]})" if inst in errors else inst for inst in down[:5])
    more = f"; and {len(down) - 5} more" if len(down) > 5 else ""
    return Outcome(
        False,
        f"prometheus {shown}: job {job!r}: {len(down)} of {total} targets down: {listed}{more}"
        f"{note(warnings)}",
        measured=measured,
        threshold="all up",
        details={**details, "down": down},
    )


def _last_errors(job: str, base: str, target: Target, deadline: float) -> dict[str, str]:
    """instance -> last scrape error, best effort (the message is useful without it)."""
    try:
        data, _ = api(base, "/api/v1/targets", target, deadline, "targets", {"state": "active"})
    except CheckFailed:
        return {}
    active = data.get("activeTargets") if isinstance(data, dict) else None
    found: dict[str, str] = {}
    for t in active if isinstance(active, list) else []:
        labels = t.get("labels") if isinstance(t, dict) else None
        if isinstance(labels, dict) and labels.get("job") == job and t.get("lastError"):
            text = redact(one_line(t["lastError"]), target.secrets)
            found[one_line(labels.get("instance", "?"))] = text[:160]
    return found


_STATES = ("firing", "pending", "inactive")


def no_firing_alerts(ignore: list[str], base: str, target: Target, deadline: float) -> Outcome:
    shown = redact(redact_url(base), target.secrets)
    what = f"prometheus {shown}: /api/v1/alerts"
    data, warnings = api(base, "/api/v1/alerts", target, deadline, what)
    firing, ignored, pending = [], set(), set()
    with parsing(what):
        alerts = need(need(data, dict, "data", what).get("alerts", MISSING), list, "alerts", what)
        for i, item in enumerate(alerts):
            alert = need(item, dict, f"alerts[{i}]", what)
            labels = need(alert.get("labels", MISSING), dict, f"alerts[{i}].labels", what)
            name = one_line(labels.get("alertname", "?"))[:100]
            state = alert.get("state", MISSING)
            if state not in _STATES:
                found = "no state" if state is MISSING else f"state {short(state)}"
                raise CheckFailed(
                    f"{what}: alert {name!r} has {found}; expected firing, pending or inactive",
                    threshold="0 firing",
                )
            if state == "firing":
                if name in ignore:
                    ignored.add(name)
                else:
                    severity = one_line(labels.get("severity", ""))[:40]
                    firing.append(f"{name} (severity={severity})" if severity else name)
            elif state == "pending":
                pending.add(name)
    notes = ([f"ignored: {', '.join(sorted(ignored))}"] if ignored else []) + (
        [f"pending: {', '.join(sorted(pending))}"] if pending else []
    )
    tail = (f" ({'; '.join(notes)})" if notes else "") + note(warnings)
    details: dict[str, Any] = {"ignored": sorted(ignored), "pending": sorted(pending)}
    if warnings:
        details["warnings"] = warnings
    if firing:
        names = sorted(set(firing))
        return Outcome(
            False,
            f"prometheus {shown}: {len(firing)} firing alert{'s' if len(firing) != 1 else ''}: "
            f"{', '.join(names[:10])}{', ...' if len(names) > 10 else ''}{tail}",
            measured=len(firing),
            threshold="0 firing",
            details={**details, "firing": names},
        )
    return Outcome(
        True,
        f"prometheus {shown}: no firing alerts{tail}",
        measured=0,
        threshold="0 firing",
        details=details,
    )
