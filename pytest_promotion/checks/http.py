"""The ``http`` check kind: status, JSON fields, body pattern and latency of one request.

The request itself goes through :class:`~.http_session.BoundSession` (deadline, body cap,
TLS trust, same-origin redirects), the same session Python gates get from the ``http``
fixture.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import fleet, http_posture
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .http_session import MAX_BODY_BYTES, BoundSession, session_for
from .http_transport import prepare as _prepare_transport

if TYPE_CHECKING:
    import requests

__all__ = ["KEYS", "ROLLBACK", "BoundSession", "prepare", "run", "session_for", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "http": str,
    "method": str,
    "headers": dict,
    "expect_status": (int, list),
    "expect_json": dict,
    "expect_body": str,
    "max_latency_ms": (int, float),
    "max_body_bytes": int,
    **http_posture.KEYS,  # expect_headers, forbid_headers, forbid_paths, forbid_paths_status
}
KEYS.update(fleet.KEYS["http"])  # targets, quorum: a fleet check (fleet.py)
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def prepare() -> None:
    """Imports a probe pool's threads would otherwise do on first use (see items.start_early)."""
    _prepare_transport()
    from . import tls  # noqa: F401 - TLS failures are described by tls.describe_ssl_error


def _statuses(spec: Mapping[str, Any]) -> list[int]:
    value = spec.get("expect_status", [])
    return [value] if isinstance(value, int) else list(value)


def validate(spec: Mapping[str, Any], where: str) -> None:
    if fleet.wanted(spec):
        return fleet.validate(spec, where, "http")

    def bad(key: str, expected: str, found: Any) -> CheckConfigError:
        return CheckConfigError(f"{where}: key {key!r}: expected {expected}, found {found!r}")

    target = spec.get("http")
    if not isinstance(target, str) or not target.strip() or " " in target.strip():
        raise bad("http", "a path like /health or a full URL", target)
    if "://" in target and urlsplit(target).scheme not in ("http", "https"):
        raise bad("http", "an http:// or https:// URL", target)
    if str(spec.get("method", "GET")).upper() not in _METHODS:
        raise bad("method", " or ".join(sorted(_METHODS)), spec.get("method"))
    headers = spec.get("headers", {})
    if not isinstance(headers, Mapping):
        raise bad("headers", "a table of strings", headers)
    for name, value in headers.items():
        if not isinstance(value, str):
            raise bad("headers", "a table of strings", f"{name} = {value!r}")
    statuses = spec.get("expect_status", [])
    listed = [statuses] if isinstance(statuses, int) else statuses
    if not isinstance(listed, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in listed
    ):
        raise bad("expect_status", "an HTTP status (100-599) or a list of them", statuses)
    if "expect_json" in spec:
        empty = _empty_table(spec["expect_json"])
        if empty is not None:  # it would check nothing, and pass on any JSON answer
            raise bad("expect_json", "the values to expect (an empty table checks nothing)", empty)
    if "expect_body" in spec:
        try:
            re.compile(spec["expect_body"])
        except (re.error, TypeError) as exc:
            raise bad("expect_body", f"a regular expression ({exc})", spec["expect_body"]) from None
    for key in ("max_latency_ms", "max_body_bytes"):
        value = spec.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise bad(key, "a number > 0", value)
    http_posture.validate(spec, where)


def _flatten(expected: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in expected.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _empty_table(expected: Mapping[str, Any], prefix: str = "") -> str | None:
    """The first table in ``expect_json`` with nothing in it, as ``key = {}``."""
    if not expected:
        return f"{prefix[:-1] or 'expect_json'} = {{}}"
    for key, value in expected.items():
        if isinstance(value, Mapping):
            found = _empty_table(value, f"{prefix}{key}.")
            if found is not None:
                return found
    return None


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    return bool(expected == got)


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_json(response: requests.Response, expected: Mapping[str, Any]) -> list[str]:
    try:
        document = json.loads(response.content)
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        start = response.content[:40].decode("utf-8", "replace").strip()
        return [f"body is not JSON ({kind}): {start!r}"]
    problems = []
    for path, value in _flatten(expected):
        found, got = _lookup(document, path)
        if not found:
            problems.append(f"{path}: expected {_show(value)}, got nothing (no such key)")
        elif not _same(value, got):
            problems.append(f"{path}: expected {_show(value)}, got {_show(got)}")
    return problems


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    if fleet.wanted(spec):
        return fleet.run(spec, target, "http")
    # A bug here raises into the runner's one error net (checks/runner.py): a block.
    return _run(spec, target)


def _run(spec: Mapping[str, Any], target: Target) -> Outcome:
    timeout = float(spec.get("timeout", target.timeout))
    deadline = time.monotonic() + timeout  # forbid_paths probes share what is left of it
    cap = int(spec.get("max_body_bytes", MAX_BODY_BYTES))
    max_ms = spec.get("max_latency_ms")
    threshold = f"<= {max_ms:g} ms" if max_ms is not None else None
    statuses = _statuses(spec)
    session = session_for(target, timeout=timeout, max_body_bytes=cap, headers=spec.get("headers"))
    url = session.url(spec["http"])
    details: dict[str, Any] = {"url": session.redact(url), "warnings": list(session.warnings)}

    def done(
        passed: bool, message: str, measured: Any = None, limit: str | None = threshold
    ) -> Outcome:
        if session.warnings:
            message += "; " + "; ".join(session.warnings)
        unit = "ms" if isinstance(measured, float) else ""
        redacted = {k: session.redact(v) if isinstance(v, str) else v for k, v in details.items()}
        return Outcome(passed, session.redact(message), measured, limit, unit, details=redacted)

    if "://" not in spec["http"] and not target.base_url:
        return done(False, f"{spec['http']} is a path, but the environment has no base_url")
    if target.ca_bundle and not target.insecure and not target.path(target.ca_bundle).is_file():
        return done(False, f"ca_bundle {target.path(target.ca_bundle)} does not exist")
    try:
        with session:
            response, truncated = session.fetch(
                str(spec.get("method", "GET")), url, expect_status=statuses
            )
    except CheckFailed as failed:
        return done(False, failed.message)
    latency = round(response.elapsed.total_seconds() * 1000, 1)
    details.update(status=response.status_code, latency_ms=latency, body_truncated=truncated)
    details["body"] = response.content[:500].decode("utf-8", "replace")
    problems: list[str] = []
    code = response.status_code
    if (code not in statuses) if statuses else not 200 <= code < 300:
        want = " or ".join(map(str, statuses)) if statuses else "2xx"
        reason = response.reason or ""
        note = f" ({reason})" if reason.startswith("redirect to ") else ""
        return done(False, f"expected {want}, got {code}{note}", code, f"status {want}")
    needs_body = "expect_json" in spec or "expect_body" in spec
    if needs_body and truncated:
        problems.append(f"response body larger than {cap} bytes (max_body_bytes)")
    elif "expect_json" in spec:
        problems += _check_json(response, spec["expect_json"])
    body_re = spec.get("expect_body")
    if needs_body and not truncated and body_re and not re.search(body_re, response.text):
        problems.append(f"body does not match /{body_re}/")
    if problems:
        return done(False, "; ".join(problems), latency)
    if max_ms is not None and latency > max_ms:
        return done(False, f"{latency:.0f} ms > {max_ms:g} ms", latency)
    outcome = done(True, f"{code} in {latency:.0f} ms", latency)
    outcome = http_posture.apply(outcome, spec, target, response, deadline)
    outcome.message = session.redact(outcome.message)
    return outcome
