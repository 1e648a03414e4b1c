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
no targets, an API ``"status": "error"`` or an unreachable Prometheus all fail, with a
message that says which. Such failures carry ``rollback=False``: the run cannot vouch
for the release, so the decision is ``block``; only a measured value outside its limits,
a target down or a firing alert is a rollback trigger (unless the check's ``trigger``
says otherwise).

Every request is bounded by the check's timeout (connect, each read, and the whole body)
and by a 1 MiB body cap; TLS is verified with the environment's ``ca_bundle``.

:func:`query_value` gives Python gates the same single-value rule.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from ..redact import redact, redact_url
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .http_transport import prepare as _prepare_http

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
}
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True
prepare = _prepare_http  # import requests before the probe pool starts
MAX_BODY = 1024 * 1024
_MODES = ("query", "targets_up", "no_firing_alerts")


def validate(spec: Mapping[str, Any], where: str) -> None:
    url = spec.get("prometheus")
    # validated before ${VAR} and {placeholder} substitution: a template is checked at run
    if not isinstance(url, str) or not (url.startswith(("http://", "https://", "/")) or "{" in url):
        raise CheckConfigError(
            f"{where}: key 'prometheus': expected an http(s):// URL or a path starting with '/', "
            f"found {redact_url(str(url))!r}"
        )
    modes = [m for m in _MODES if m in spec]
    if len(modes) != 1:
        raise CheckConfigError(
            f"{where}: key 'prometheus': expected exactly one of query, targets_up, "
            f"no_firing_alerts, found {', '.join(modes) or 'none'}"
        )
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
    if "targets_up" in spec and not str(spec["targets_up"]).strip():
        raise CheckConfigError(f"{where}: key 'targets_up': expected a job name, found ''")
    if spec.get("no_firing_alerts") is False:
        raise CheckConfigError(f"{where}: key 'no_firing_alerts': expected true, found false")
    if "ignore_alerts" in spec:
        ignore = spec["ignore_alerts"]
        if "no_firing_alerts" not in spec:
            raise CheckConfigError(
                f"{where}: key 'ignore_alerts': expected only with 'no_firing_alerts', "
                f"found it alone"
            )
        if not all(isinstance(name, str) and name for name in ignore):
            raise CheckConfigError(
                f"{where}: key 'ignore_alerts': expected a list of alert names, found {ignore!r}"
            )


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    timeout = float(spec.get("timeout", target.timeout))
    deadline = time.monotonic() + timeout
    try:
        base = resolve_url(str(spec["prometheus"]), target)
        if "query" in spec:
            return _query_check(spec, base, target, deadline)
        if "targets_up" in spec:
            return _targets_up(str(spec["targets_up"]), base, target, deadline)
        ignore = [str(name) for name in spec.get("ignore_alerts", [])]
        return _no_firing_alerts(ignore, base, target, deadline)
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
        value, _ = _instant(resolve_url(base_url, target), query, target, deadline)
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


def fetch_json(
    url: str, target: Target, deadline: float, params: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    """GET ``url`` and decode its JSON body: (status code, value), within ``deadline``.

    The request goes through the ``http`` check's session (one deadline for the whole
    exchange, the target's TLS trust, same-origin redirects, no netrc credentials).
    Raises :class:`CheckFailed` (already redacted) for an unreachable server, a TLS
    failure, a body over 1 MiB, the deadline, or a body that is not JSON.
    """
    from urllib.parse import urlencode

    from .http_session import session_for

    shown = redact(redact_url(url), target.secrets)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise CheckFailed(f"{shown}: the deadline passed before the request")
    if params:
        url += ("&" if "?" in url else "?") + urlencode(params)
    session = session_for(
        target, timeout=remaining, max_body_bytes=MAX_BODY, headers={"Accept": "application/json"}
    )
    try:
        with session:
            response, truncated = session.fetch("GET", url)
    except CheckFailed as failed:
        raise CheckFailed(f"{shown}: {failed.message}") from None
    if truncated:
        raise CheckFailed(f"{shown}: response body larger than 1 MiB")
    status, body = response.status_code, response.content
    try:
        return status, json.loads(body)
    except ValueError:
        snippet = redact(body[:80].decode("utf-8", "replace"), target.secrets)
        raise CheckFailed(
            f"{shown}: HTTP {status}, body is not JSON ({' '.join(snippet.split())!r})"
        ) from None


def _api(
    base: str, path: str, target: Target, deadline: float, params: dict[str, str] | None = None
) -> Any:
    """The ``data`` of a Prometheus API answer with ``"status": "success"``."""
    shown = redact(redact_url(base), target.secrets)
    try:
        status, doc = fetch_json(base.rstrip("/") + path, target, deadline, params)
    except CheckFailed as failed:
        failed.message = f"prometheus {failed.message}"
        raise
    if not isinstance(doc, dict):
        raise CheckFailed(f"prometheus {shown}: HTTP {status}, not a Prometheus API answer")
    if doc.get("status") != "success":
        error = redact(" ".join(str(doc.get("error", "no error text")).split()), target.secrets)
        raise CheckFailed(
            f"prometheus {shown}: HTTP {status}, status {doc.get('status')!r}: "
            f"{doc.get('errorType', 'error')}: {error[:300]}"
        )
    return doc.get("data")


def _instant(base: str, query: str, target: Target, deadline: float) -> tuple[float, str]:
    """(value, label set) of an instant query that must yield exactly one finite number."""
    shown = redact(redact_url(base), target.secrets)
    q = _short(query)
    remaining = max(0.001, deadline - time.monotonic())
    data = _api(
        base, "/api/v1/query", target, deadline, {"query": query, "timeout": f"{remaining:.3f}"}
    )
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    labels = ""
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        raw = result[1]
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise CheckFailed(
                f"prometheus {shown}: {q} returned no data (empty vector); no data is never a "
                f"pass: check the metric name, labels and time window"
            )
        if len(result) > 1:
            sets = ", ".join(_labels(s.get("metric", {})) for s in result[:3])
            more = ", ..." if len(result) > 3 else ""
            raise CheckFailed(
                f"prometheus {shown}: {q} returned {len(result)} series ({sets}{more}); "
                f"aggregate them to one value, e.g. sum(...) or max(...)"
            )
        raw = result[0].get("value", [None, None])[1]
        labels = _labels(result[0].get("metric", {}))
    else:
        raise CheckFailed(
            f"prometheus {shown}: {q} returned a {kind or 'malformed'} result; expected a scalar "
            f"or an instant vector with one sample"
        )
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise CheckFailed(f"prometheus {shown}: {q} returned {raw!r}, not a number") from None
    if math.isnan(value):
        raise CheckFailed(
            f"prometheus {shown}: {q} returned NaN (e.g. 0/0: nothing happened in the window); "
            f"no data is never a pass"
        )
    if math.isinf(value):
        raise CheckFailed(
            f"prometheus {shown}: {q} returned {raw} (a division by zero?); no data is never a pass"
        )
    return value, labels


def _query_check(spec: Mapping[str, Any], base: str, target: Target, deadline: float) -> Outcome:
    shown = redact(redact_url(base), target.secrets)
    lo, hi = spec.get("min"), spec.get("max")
    parts = ([f">= {float(lo):g}"] if lo is not None else []) + (
        [f"<= {float(hi):g}"] if hi is not None else []
    )
    threshold = " and ".join(parts)
    q = _short(str(spec["query"]))
    try:
        value, labels = _instant(base, str(spec["query"]), target, deadline)
    except CheckFailed as failed:
        failed.threshold = threshold
        raise
    details = {"series": labels} if labels else {}
    if lo is not None and value < float(lo):
        return Outcome(
            False,
            f"prometheus {shown}: {q} = {value:g}, below the minimum {float(lo):g}",
            measured=value,
            threshold=threshold,
            details=details,
        )
    if hi is not None and value > float(hi):
        return Outcome(
            False,
            f"prometheus {shown}: {q} = {value:g}, above the maximum {float(hi):g}",
            measured=value,
            threshold=threshold,
            details=details,
        )
    return Outcome(
        True,
        f"prometheus {shown}: {q} = {value:g} ({threshold})",
        measured=value,
        threshold=threshold,
        details=details,
    )


def _targets_up(job: str, base: str, target: Target, deadline: float) -> Outcome:
    shown = redact(redact_url(base), target.secrets)
    query = f"up{{job={json.dumps(job)}}}"
    data = _api(base, "/api/v1/query", target, deadline, {"query": query})
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list) or not result:
        raise CheckFailed(
            f"prometheus {shown}: job {job!r} has no targets (is the job name right, and is it "
            f"scraped by this Prometheus?)",
            measured="0/0",
            threshold="all up",
        )
    down = sorted(
        str(s.get("metric", {}).get("instance", "?"))
        for s in result
        if s.get("value", [None, "0"])[1] != "1"
    )
    total = len(result)
    measured = f"{total - len(down)}/{total}"
    if not down:
        return Outcome(
            True,
            f"prometheus {shown}: job {job!r}: all {total} target{'s' if total != 1 else ''} up",
            measured=measured,
            threshold="all up",
        )
    errors = _last_errors(job, base, target, deadline)
    listed = "; ".join(f"{inst} ({errors[inst]})" if inst in errors else inst for inst in down[:5])
    more = f"; and {len(down) - 5} more" if len(down) > 5 else ""
    return Outcome(
        False,
        f"prometheus {shown}: job {job!r}: {len(down)} of {total} targets down: {listed}{more}",
        measured=measured,
        threshold="all up",
        details={"down": down},
    )


def _last_errors(job: str, base: str, target: Target, deadline: float) -> dict[str, str]:
    """instance -> last scrape error, best effort (the message is useful without it)."""
    try:
        data = _api(base, "/api/v1/targets", target, deadline, {"state": "active"})
    except CheckFailed:
        return {}
    found: dict[str, str] = {}
    for t in data.get("activeTargets", []) if isinstance(data, dict) else []:
        labels = t.get("labels", {})
        if labels.get("job") == job and t.get("lastError"):
            text = redact(" ".join(str(t["lastError"]).split()), target.secrets)
            found[str(labels.get("instance", "?"))] = text[:160]
    return found


def _no_firing_alerts(ignore: list[str], base: str, target: Target, deadline: float) -> Outcome:
    shown = redact(redact_url(base), target.secrets)
    data = _api(base, "/api/v1/alerts", target, deadline)
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(alerts, list):
        raise CheckFailed(
            f"prometheus {shown}: /api/v1/alerts has no alert list", threshold="0 firing"
        )
    firing, ignored, pending = [], set(), set()
    for alert in alerts:
        labels = alert.get("labels", {})
        name = str(labels.get("alertname", "?"))
        if alert.get("state") == "firing":
            if name in ignore:
                ignored.add(name)
            else:
                severity = labels.get("severity")
                firing.append(f"{name} (severity={severity})" if severity else name)
        elif alert.get("state") == "pending":
            pending.add(name)
    notes = ([f"ignored: {', '.join(sorted(ignored))}"] if ignored else []) + (
        [f"pending: {', '.join(sorted(pending))}"] if pending else []
    )
    tail = f" ({'; '.join(notes)})" if notes else ""
    details = {"ignored": sorted(ignored), "pending": sorted(pending)}
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


def _labels(metric: Mapping[str, Any]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{metric.get('__name__', '')}{{{inner}}}"


def _short(query: str) -> str:
    flat = " ".join(query.split())
    return flat if len(flat) <= 120 else flat[:117] + "..."
