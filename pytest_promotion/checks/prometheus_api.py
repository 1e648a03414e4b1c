"""The Prometheus HTTP API as the ``prometheus`` check reads it.

A bounded JSON fetch (:func:`fetch_json`, shared with the ``grafana`` kind), the
``status`` / ``data`` / ``warnings`` envelope (:func:`api`), and the shape checks that
turn a malformed answer into one failure line: never a traceback, never a pass.

``warnings`` in an answer: PromQL annotations (``PromQL warning: ...``, ``PromQL info:
...``) are about the query and are returned to be shown with the outcome; any other
warning (a Thanos or remote-read partial response: a store that did not answer) means
the data may be incomplete, and the check fails with ``partial answer: <warning>``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from ..redact import redact, redact_url
from .base import CheckConfigError, CheckFailed, Target

__all__ = ["MAX_BODY", "MISSING", "api", "describe", "fetch_json", "labels_text", "need", "note"]
__all__ += ["one_line", "parsing", "sample", "short", "validate_server_url"]

MAX_BODY = 1024 * 1024
MISSING: Any = object()  # ``d.get(key, MISSING)``: a key that is not there
_ANNOTATIONS = ("PromQL warning:", "PromQL info:")
_log = logging.getLogger("pytest_promotion.checks.prometheus")
_T = TypeVar("_T")


def validate_server_url(spec: Mapping[str, Any], key: str, where: str) -> None:
    """``spec[key]`` names a server (``prometheus``, ``grafana``): an http(s) URL, or a path
    to join to the environment's ``base_url``. Checked before ``${VAR}`` and
    ``{placeholder}`` substitution, so a template passes here and is checked at run."""
    url = spec.get(key)
    if not isinstance(url, str) or not (url.startswith(("http://", "https://", "/")) or "{" in url):
        raise CheckConfigError(
            f"{where}: key {key!r}: expected an http(s):// URL or a path starting with '/', "
            f"found {redact_url(str(url))!r}"
        )


def fetch_json(
    url: str, target: Target, deadline: float, params: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    """GET ``url`` and decode its JSON body: (status code, value), within ``deadline``.

    The request goes through the ``http`` check's session (one deadline for the whole
    exchange, the target's TLS trust, same-origin redirects, no netrc credentials).
    Raises :class:`CheckFailed` (already redacted) for an unreachable server, a TLS
    failure, a body over 1 MiB, the deadline, or a body that is not (readable) JSON.
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
    except RecursionError:
        raise CheckFailed(f"{shown}: HTTP {status}, JSON body nested too deeply") from None
    except ValueError:
        snippet = redact(body[:80].decode("utf-8", "replace"), target.secrets)
        raise CheckFailed(
            f"{shown}: HTTP {status}, body is not JSON ({' '.join(snippet.split())!r})"
        ) from None


def api(
    base: str,
    path: str,
    target: Target,
    deadline: float,
    what: str,
    params: dict[str, str] | None = None,
) -> tuple[Any, list[str]]:
    """(``data``, PromQL warnings) of an API answer with ``"status": "success"``.

    ``what`` starts the failure lines about the answer (``prometheus URL: query 'up'``).
    """
    shown = redact(redact_url(base), target.secrets)
    try:
        status, doc = fetch_json(base.rstrip("/") + path, target, deadline, params)
    except CheckFailed as failed:
        failed.message = f"prometheus {failed.message}"
        raise
    if not isinstance(doc, dict):
        raise CheckFailed(
            f"prometheus {shown}: HTTP {status}, not a Prometheus API answer "
            f"(the body is {describe(doc)})"
        )
    if doc.get("status") != "success":
        error = redact(one_line(doc.get("error", "no error text")), target.secrets)
        raise CheckFailed(
            f"prometheus {shown}: HTTP {status}, status {short(doc.get('status'))}: "
            f"{one_line(doc.get('errorType', 'error'))[:60]}: {error[:300]}"
        )
    if status != 200:  # a proxy or a broken server saying "success" with an error status
        raise CheckFailed(
            f"prometheus {shown}: HTTP {status} with a success body: not a Prometheus API answer"
        )
    warnings = need(doc.get("warnings", []), list, "warnings", what)
    texts = [redact(one_line(w), target.secrets)[:300] for w in warnings]
    partial = [w for w in texts if not w.startswith(_ANNOTATIONS)]
    if partial:
        more = f" (and {len(texts) - 1} more warnings)" if len(texts) > 1 else ""
        raise CheckFailed(f"{what}: partial answer: {partial[0]}{more}")
    return doc.get("data", MISSING), texts


def describe(value: Any) -> str:
    """What a JSON value is, for a message: ``a string``, ``an object``, ``missing``..."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an empty list" if not value else f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def need(value: Any, kind: type[_T], where: str, what: str) -> _T:
    """``value`` if it is a ``kind`` (dict or list), else the malformed-answer failure."""
    if isinstance(value, kind):
        return value
    raise CheckFailed(f"{what}: not a Prometheus API answer ({where} is {describe(value)})")


def sample(value: Any, where: str, what: str) -> tuple[dict[str, Any], Any]:
    """(labels, raw value) of one instant-vector sample ``{"metric": {}, "value": [t, "v"]}``."""
    item = need(value, dict, where, what)
    metric = need(item.get("metric", {}), dict, f"{where}.metric", what)
    pair = item.get("value", MISSING)
    if pair is MISSING and "histogram" in item:
        raise CheckFailed(
            f"{what}: {where} is a native histogram, not a number; use histogram_count(...), "
            f"histogram_sum(...) or histogram_quantile(...)"
        )
    if not (isinstance(pair, list) and len(pair) == 2):
        raise CheckFailed(
            f"{what}: not a Prometheus API answer ({where}.value is {short(pair)}, "
            f'expected [time, "value"])'
        )
    return metric, pair[1]


@contextmanager
def parsing(what: str) -> Iterator[None]:
    """The last line of defence around the reading of a server's answer: a shape the
    checks above did not foresee becomes one failure line, not a traceback. The traceback
    goes to the log (a bug report for us), never to the decision."""
    try:
        yield
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, RecursionError) as error:
        _log.warning("%s: unexpected answer shape", what, exc_info=True)
        raise CheckFailed(f"{what}: malformed answer: {type(error).__name__}") from None


def one_line(value: Any) -> str:
    return " ".join(str(value).split())


def short(value: Any, limit: int = 60) -> str:
    """A found value for a message: its repr on one line, cut at ``limit``."""
    if value is MISSING:
        return "missing"
    text = one_line(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def note(warnings: list[str]) -> str:
    """The PromQL warnings of an answer, shown after the outcome (never silently dropped)."""
    if not warnings:
        return ""
    more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
    return f"; {warnings[0][:200]}{more}"


def labels_text(metric: Mapping[str, Any]) -> str:
    inner = ",".join(
        f'{one_line(k)}="{one_line(v)}"' for k, v in sorted(metric.items()) if k != "__name__"
    )
    return f"{one_line(metric.get('__name__', ''))}{{{inner}}}"
