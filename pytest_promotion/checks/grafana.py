"""The ``grafana`` check kind: ``GET /api/health`` must say ``"database": "ok"``.

Keys:

- ``grafana``: Grafana's base URL (``https://grafana.example.com``, or with the sub-path
  it is served from), or a path starting with ``/`` joined to the environment's ``base_url``.

Measured: the version string Grafana reports (``"unknown"`` when it hides it, e.g. for
anonymous users with ``hide_version``; the database verdict is what passes or fails).
The request is bounded by the check's timeout and a 1 MiB body cap; TLS is verified.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..redact import redact, redact_url
from .base import CheckFailed, Outcome, Target
from .http_transport import prepare as _prepare_http
from .prometheus import fetch_json, resolve_url
from .prometheus_api import describe, one_line, short, validate_server_url

__all__ = ["KEYS", "ROLLBACK", "run", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {"grafana": str}
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True
prepare = _prepare_http  # import requests before the probe pool starts


def validate(spec: Mapping[str, Any], where: str) -> None:
    validate_server_url(spec, "grafana", where)


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    timeout = float(spec.get("timeout", target.timeout))
    deadline = time.monotonic() + timeout
    try:
        base = resolve_url(str(spec["grafana"]), target)
        shown = redact(redact_url(base), target.secrets)
        status, doc = fetch_json(base.rstrip("/") + "/api/health", target, deadline)
    except CheckFailed as failed:
        failed.message = redact(f"grafana {failed.message}", target.secrets)
        failed.threshold = 'database == "ok"'
        return failed.outcome()
    if not isinstance(doc, dict):
        return Outcome(
            False,
            f"grafana {shown}: HTTP {status}, /api/health answered {describe(doc)}, not an "
            f"object with a 'database' field (is this Grafana?)",
            threshold='database == "ok"',
        )
    if "database" not in doc:
        return Outcome(
            False,
            f"grafana {shown}: HTTP {status}, /api/health has no 'database' field "
            f"(is this Grafana?)",
            threshold='database == "ok"',
        )
    version = redact(one_line(doc.get("version") or "unknown"), target.secrets)[:80]
    database = redact(short(doc["database"], 80), target.secrets)
    commit = doc.get("commit")
    details = {"http_status": status, "commit": one_line(commit)[:80] if commit else None}
    if doc["database"] != "ok" or status != 200:
        return Outcome(
            False,
            f"grafana {shown}: HTTP {status}, database {database} (expected 'ok'); "
            f"Grafana {version} cannot reach its database",
            measured=version,
            threshold='database == "ok"',
            details=details,
        )
    return Outcome(
        True,
        f"grafana {shown}: Grafana {version}, database ok",
        measured=version,
        threshold='database == "ok"',
        details=details,
    )
