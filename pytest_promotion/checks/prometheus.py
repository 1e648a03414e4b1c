"""The ``prometheus`` check kind: a PromQL value within limits, targets up, no alerts firing.

Keys (``prometheus`` plus exactly one of ``query``, ``targets_up``, ``no_firing_alerts``):

- ``prometheus``: the server's base URL (``https://prom.example.com``, a path prefix
  allowed), or a path starting with ``/`` joined to the environment's ``base_url``;
- ``query`` with ``min`` and/or ``max``: an instant query (``/api/v1/query``) whose result
  is a scalar or a vector with exactly one sample, inside the limits (inclusive);
- ``targets_up = "job"``: every target of that job is up (``up{job="..."} == 1``);
  a job with no targets fails;
- ``no_firing_alerts = true``: ``/api/v1/alerts`` lists no firing alert, apart from the
  names in ``ignore_alerts`` (e.g. ``["Watchdog"]``). Pending alerts are reported, not failed.

No data is never a pass: an empty result, NaN or +/-Inf (a ratio over zero requests),
several series (aggregate them: ``sum(...)``, ``max(...)``), a range vector, a job with
no targets, an API ``"status": "error"``, an answer that is not the API's shape (one
line naming the part: ``result[0] is a string``), an alert in no known state, a partial
answer (a ``warnings`` entry that is not a PromQL annotation: see
:mod:`.prometheus_api`) or an unreachable Prometheus all fail, with a message that
says which. Such failures carry ``rollback=False``: the run cannot vouch
for the release, so the decision is ``block``; only a measured value outside its limits,
a target down or a firing alert is a rollback trigger (unless the check's ``trigger``
says otherwise).

Every request is bounded by the check's timeout (connect, each read, and the whole body)
and by a 1 MiB body cap; TLS is verified with the environment's ``ca_bundle``.

:func:`query_value` gives Python gates the same single-value rule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ..redact import redact, redact_url
from . import prometheus_range, prometheus_status
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .http_transport import prepare as _prepare_http
from .prometheus_api import (
    MAX_BODY,
    MISSING,
    api,
    fetch_json,
    labels_text,
    need,
    note,
    parsing,
    sample,
    short,
    validate_server_url,
)

__all__ = [
    "KEYS",
    "MAX_BODY",
    "ROLLBACK",
    "fetch_json",
    "query_value",
    "resolve_url",
    "run",
    "validate",
]

KEYS: dict[str, type | tuple[type, ...]] = {
    "prometheus": str,
    "query": str,
    "min": float,
    "max": float,
    "targets_up": str,
    "no_firing_alerts": bool,
    "ignore_alerts": list,
    **prometheus_range.KEYS,  # over, max_gap, step: a query over a window
}
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True
prepare = _prepare_http  # import requests before the probe pool starts
_MODES = ("query", "targets_up", "no_firing_alerts")


def _validate_query(spec: Mapping[str, Any], where: str) -> None:
    """``query`` with its bounds: ``min`` and/or ``max``, finite, in order."""
    for key in ("min", "max"):
        if key in spec and "query" not in spec:
            raise CheckConfigError(
                f"{where}: key {key!r}: expected only with 'query', found it alone"
            )
        if key in spec and not math.isfinite(spec[key]):
            raise CheckConfigError(
                f"{where}: key {key!r}: expected a finite number, found {spec[key]!r}"
            )
    if "query" in spec:
        if not str(spec["query"]).strip():
            raise CheckConfigError(f"{where}: key 'query': expected a PromQL expression, found ''")
        if "min" not in spec and "max" not in spec:
            raise CheckConfigError(
                f"{where}: key 'query': expected 'min' and/or 'max' with it, found neither"
            )
        if "min" in spec and "max" in spec and spec["min"] > spec["max"]:
            raise CheckConfigError(
                f"{where}: key 'min': expected <= max ({spec['max']!r}), found {spec['min']!r}"
            )


def _validate_ignore_alerts(spec: Mapping[str, Any], where: str) -> None:
    """``ignore_alerts``: alert names, and only beside ``no_firing_alerts``."""
    ignore = spec["ignore_alerts"]
    if "no_firing_alerts" not in spec:
        raise CheckConfigError(
            f"{where}: key 'ignore_alerts': expected only with 'no_firing_alerts', found it alone"
        )
    if not all(isinstance(name, str) and name for name in ignore):
        raise CheckConfigError(
            f"{where}: key 'ignore_alerts': expected a list of alert names, found {ignore!r}"
        )


def validate(spec: Mapping[str, Any], where: str) -> None:
    validate_server_url(spec, "prometheus", where)
    modes = [m for m in _MODES if m in spec]
    if len(modes) != 1:
        raise CheckConfigError(
            f"{where}: key 'prometheus': expected exactly one of query, targets_up, "
            f"no_firing_alerts, found {', '.join(modes) or 'none'}"
        )
    _validate_query(spec, where)
    if "targets_up" in spec and not str(spec["targets_up"]).strip():
        raise CheckConfigError(f"{where}: key 'targets_up': expected a job name, found ''")
    prometheus_range.validate_over(spec, where)
    if spec.get("no_firing_alerts") is False:
        raise CheckConfigError(f"{where}: key 'no_firing_alerts': expected true, found false")
    if "ignore_alerts" in spec:
        _validate_ignore_alerts(spec, where)


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    timeout = float(spec.get("timeout", target.timeout))
    deadline = time.monotonic() + timeout
    try:
        base = resolve_url(str(spec["prometheus"]), target)
        if "query" in spec:
            return _query_check(spec, base, target, deadline)
        if "targets_up" in spec:
            return prometheus_status.targets_up(str(spec["targets_up"]), base, target, deadline)
        ignore = [str(name) for name in spec.get("ignore_alerts", [])]
        return prometheus_status.no_firing_alerts(ignore, base, target, deadline)
    except CheckFailed as failed:
        failed.message = redact(failed.message, target.secrets)
        if failed.rollback is None:
            failed.rollback = False  # could not measure: block, not a rollback trigger
        return failed.outcome()


def query_value(
    base_url: str, query: str, target: Target, *, timeout: float | None = None
) -> float:
    """The single value of an instant query; :class:`CheckFailed` when there is none.

    For Python gates: ``assert query_value(url, "sum(rate(errors[5m]))", target) < 0.05``.
    """
    deadline = target.deadline(timeout)
    try:
        value, _, _ = _instant(resolve_url(base_url, target), query, target, deadline)
    except CheckFailed as failed:
        failed.rollback = False if failed.rollback is None else failed.rollback
        raise
    return value


def resolve_url(value: str, target: Target) -> str:
    """A full URL as is; a path joined to the environment's ``base_url``."""
    if value.startswith(("http://", "https://")):
        return value
    if value.startswith("/") and target.base_url:
        return target.base_url.rstrip("/") + value
    raise CheckFailed(
        f"{redact_url(value)!r} is not a full URL and the environment {target.env!r} "
        f"has no base_url"
    )


def _instant(
    base: str, query: str, target: Target, deadline: float
) -> tuple[float, str, list[str]]:
    """(value, label set, PromQL warnings) of an instant query: exactly one finite number."""
    shown = redact(redact_url(base), target.secrets)
    q = _short(query)
    what = f"prometheus {shown}: query {q!r}"
    remaining = max(0.001, deadline - time.monotonic())
    params = {"query": query, "timeout": f"{remaining:.3f}"}
    data, warnings = api(base, "/api/v1/query", target, deadline, what, params)
    with parsing(what):
        data = need(data, dict, "data", what)
        kind, result = data.get("resultType", MISSING), data.get("result", MISSING)
        labels = ""
        if kind == "scalar":
            if not (isinstance(result, list) and len(result) == 2):
                raise CheckFailed(
                    f"{what}: not a Prometheus API answer (result is {short(result)}, "
                    f'expected [time, "value"])'
                )
            raw = result[1]
        elif kind == "vector":
            samples = [
                sample(s, f"result[{i}]", what)
                for i, s in enumerate(need(result, list, "result", what))
            ]
            if not samples:
                raise CheckFailed(
                    f"prometheus {shown}: {q} returned no data (empty vector); no data is never a "
                    f"pass: check the metric name, labels and time window"
                )
            if len(samples) > 1:
                sets = ", ".join(labels_text(metric) for metric, _ in samples[:3])
                more = ", ..." if len(samples) > 3 else ""
                raise CheckFailed(
                    f"prometheus {shown}: {q} returned {len(samples)} series ({sets}{more}); "
                    f"aggregate them to one value, e.g. sum(...) or max(...)"
                )
            labels = labels_text(samples[0][0])
            raw = samples[0][1]
        elif kind in ("matrix", "string"):
            raise CheckFailed(
                f"prometheus {shown}: {q} returned a {kind} result; expected a scalar "
                f"or an instant vector with one sample"
            )
        else:
            raise CheckFailed(f"{what}: not a Prometheus API answer (resultType is {short(kind)})")
        # Prometheus sends the value as a string ("0.995", "NaN", "+Inf")
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise CheckFailed(f"prometheus {shown}: {q} returned {short(raw)}, not a number")
        try:
            value = float(raw)
        except ValueError:
            raise CheckFailed(
                f"prometheus {shown}: {q} returned {short(raw)}, not a number"
            ) from None
    if math.isnan(value):
        raise CheckFailed(
            f"prometheus {shown}: {q} returned NaN (e.g. 0/0: nothing happened in the window); "
            f"no data is never a pass"
        )
    if math.isinf(value):
        raise CheckFailed(
            f"prometheus {shown}: {q} returned {raw} (a division by zero?); no data is never a pass"
        )
    return value, labels, warnings


def _query_check(spec: Mapping[str, Any], base: str, target: Target, deadline: float) -> Outcome:
    shown = redact(redact_url(base), target.secrets)
    lo, hi = spec.get("min"), spec.get("max")
    parts = ([f">= {float(lo):g}"] if lo is not None else []) + (
        [f"<= {float(hi):g}"] if hi is not None else []
    )
    threshold = " and ".join(parts)
    q = _short(str(spec["query"]))
    if "over" in spec:
        try:
            return prometheus_range.run_over(spec, base, target, deadline, threshold)
        except CheckFailed as failed:
            failed.threshold = threshold
            raise
    try:
        value, labels, warnings = _instant(base, str(spec["query"]), target, deadline)
    except CheckFailed as failed:
        failed.threshold = threshold
        raise
    details: dict[str, Any] = {"series": labels} if labels else {}
    if warnings:
        details["warnings"] = warnings
    tail = note(warnings)
    if lo is not None and value < float(lo):
        message = f"prometheus {shown}: {q} = {value:g}, below the minimum {float(lo):g}{tail}"
        return Outcome(False, message, measured=value, threshold=threshold, details=details)
    if hi is not None and value > float(hi):
        message = f"prometheus {shown}: {q} = {value:g}, above the maximum {float(hi):g}{tail}"
        return Outcome(False, message, measured=value, threshold=threshold, details=details)
    message = f"prometheus {shown}: {q} = {value:g} ({threshold}){tail}"
    return Outcome(True, message, measured=value, threshold=threshold, details=details)


def _short(query: str) -> str:
    flat = " ".join(query.split())
    return flat if len(flat) <= 120 else flat[:117] + "..."
