"""Response posture for the ``http`` kind: the headers a service must send and must not,
and the paths it must not expose.

- ``expect_headers = { "Strict-Transport-Security" = "max-age=\\d{8,}" }``: the header is
  present and its value *fully* matches the pattern (names are case-insensitive);
- ``forbid_headers = ["Server: .*\\d", "X-Powered-By"]``: a bare name forbids the header;
  ``Name: pattern`` forbids it when the pattern is *found* in its value (a version banner);
- ``forbid_paths = ["/debug/pprof/", "/.env"]``: each must answer one of
  ``forbid_paths_status`` (default 401, 403, 404), never anything else: a 2xx is exposed,
  a redirect is not followed (a 302 to a login page counts only if listed there). The
  paths are probed concurrently, as an anonymous client (without the check's ``headers``:
  hidden means hidden from the public), against the origin of the check's URL, within what is
  left of the check's deadline, and counted in one line: "3 of 4 paths hidden; /metrics
  answered 200".

A posture failure blocks (rollback=False): a missing header is not an outage. A path
that does not answer in time is a failure too (no evidence that it is hidden).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from .base import CheckConfigError, CheckFailed, Outcome, Target
from .http_session import session_for

if TYPE_CHECKING:
    import requests

__all__ = ["KEYS", "apply", "header_problems", "uses_posture", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "expect_headers": dict,
    "forbid_headers": list,
    "forbid_paths": list,
    "forbid_paths_status": list,
}
DEFAULT_HIDDEN = (401, 403, 404)
_PROBE_BYTES = 4096  # the body of a forbidden path is not read: its status is the answer
_MAX_WORKERS = 8
_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an HTTP token


def uses_posture(spec: Mapping[str, Any]) -> bool:
    return any(key in spec for key in KEYS)


def _split_forbidden(entry: str) -> tuple[str, str | None]:
    name, sep, pattern = entry.partition(":")
    return name.strip(), (pattern.strip() if sep else None)


def validate(spec: Mapping[str, Any], where: str) -> None:
    def bad(key: str, expected: str, found: Any) -> CheckConfigError:
        return CheckConfigError(f"{where}: key {key!r}: expected {expected}, found {found!r}")

    for name, pattern in spec.get("expect_headers", {}).items():
        if not _NAME.match(name) or not isinstance(pattern, str):
            raise bad("expect_headers", "a table of header name = value pattern", {name: pattern})
        try:
            re.compile(pattern)
        except re.error as exc:
            raise bad("expect_headers", f"a regular expression ({exc})", pattern) from None
    for entry in spec.get("forbid_headers", []):
        name, pattern = _split_forbidden(entry) if isinstance(entry, str) else ("", None)
        if not _NAME.match(name) or pattern == "":
            raise bad("forbid_headers", 'a header name or "Name: value pattern"', entry)
        try:
            re.compile(pattern or "")
        except re.error as exc:
            raise bad("forbid_headers", f"a regular expression ({exc})", entry) from None
    paths = spec.get("forbid_paths", ["/"])
    if not paths or not all(
        isinstance(p, str) and p.startswith("/") and " " not in p for p in paths
    ):
        raise bad("forbid_paths", 'a list of paths such as ["/.env", "/debug/pprof/"]', paths)
    statuses = spec.get("forbid_paths_status", list(DEFAULT_HIDDEN))
    if not statuses or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 and not 200 <= s < 300
        for s in statuses
    ):
        raise bad("forbid_paths_status", "a list of HTTP statuses, none of them 2xx", statuses)


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def header_problems(spec: Mapping[str, Any], headers: Mapping[str, str]) -> list[str]:
    """What is wrong with a response's headers (``headers`` is case-insensitive)."""
    problems = []
    for name, pattern in spec.get("expect_headers", {}).items():
        value = headers.get(name)
        if value is None:
            problems.append(f"header {name} missing (expected /{pattern}/)")
        elif not re.fullmatch(pattern, value.strip()):
            problems.append(f"header {name} is {_show(value)}, expected /{pattern}/")
    for entry in spec.get("forbid_headers", []):
        name, pattern = _split_forbidden(entry)
        value = headers.get(name)
        if value is not None and (pattern is None or re.search(pattern, value)):
            problems.append(f"header {name}: {_show(value)} is forbidden ({entry})")
    return problems


def _probe(target: Target, url: str, statuses: tuple[int, ...], deadline: float) -> str | None:
    """None when the path answered one of ``statuses``, else what it answered."""
    left = deadline - time.monotonic()
    if left <= 0:
        return "did not answer in time"
    session = session_for(target, timeout=left, max_body_bytes=_PROBE_BYTES)
    try:
        with session:
            # every redirect is returned as it is: following one to a login page would
            # count a hidden path as exposed, following it elsewhere proves nothing
            response, _ = session.fetch("GET", url, expect_status=(*statuses, *range(300, 400)))
    except CheckFailed as failed:
        return f"could not be probed: {failed.message}"
    if response.status_code in statuses:
        return None
    return f"answered {response.status_code}"


def _paths(spec: Mapping[str, Any], target: Target, base: str, deadline: float) -> list[str]:
    paths: list[str] = list(spec["forbid_paths"])
    statuses = tuple(spec.get("forbid_paths_status", DEFAULT_HIDDEN))
    urls = [urljoin(base, p) for p in paths]
    with ThreadPoolExecutor(min(_MAX_WORKERS, len(urls)), "forbid-paths") as pool:
        answers = list(pool.map(lambda u: _probe(target, u, statuses, deadline), urls))
    exposed = [f"{p} {a}" for p, a in zip(paths, answers, strict=True) if a is not None]
    hidden = len(paths) - len(exposed)
    return [f"{hidden} of {len(paths)} paths hidden", *exposed]


def apply(
    outcome: Outcome,
    spec: Mapping[str, Any],
    target: Target,
    response: requests.Response,
    deadline: float,
) -> Outcome:
    """Add the posture ``spec`` asks for to a passed ``http`` outcome."""
    if not uses_posture(spec) or not outcome.passed:
        return outcome
    problems = header_problems(spec, response.headers)
    shown: list[str] = []
    if "forbid_paths" in spec:
        counted = _paths(spec, target, response.url, deadline)
        outcome.measured, outcome.unit = counted[0], ""
        statuses = spec.get("forbid_paths_status", DEFAULT_HIDDEN)
        outcome.threshold = ", ".join(
            [
                *([outcome.threshold] if outcome.threshold else []),
                f"status {'/'.join(map(str, statuses))}",
            ]
        )
        if len(counted) > 1:
            problems.append("; ".join(counted))
        else:
            shown.append(counted[0])
    outcome.details["posture"] = problems
    if problems:
        outcome.passed, outcome.rollback = False, False
        outcome.message = "; ".join(problems)
    else:
        checked = [k.replace("_", " ") for k in ("expect_headers", "forbid_headers") if k in spec]
        outcome.message = "; ".join([outcome.message, *shown, *(f"{c} ok" for c in checked)])
    return outcome
