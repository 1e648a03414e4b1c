"""Where a fleet check's targets come from: inline, a file, DNS, Prometheus or a command.

Each source gives a list of :class:`Member` (a target and its labels). A source that
cannot be read, or that lists nothing, raises :class:`DiscoveryFailed`: the fleet could
not be seen, which blocks the promotion (never a pass of zero targets, never a rollback).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..redact import redact
from .base import CheckConfigError, CheckFailed, Target
from .fleet import SOURCES

__all__ = ["SOURCES", "DiscoveryFailed", "Member", "discover", "parse_listing", "validate"]

DISCOVERY_TIMEOUT = 30.0
MAX_LISTING_BYTES = 16 << 20  # a command's or a file's listing: 16 MiB


class DiscoveryFailed(Exception):
    """The fleet could not be seen: one line saying where and why."""


@dataclass(frozen=True)
class Member:
    """One target of a fleet, with the labels it came with."""

    target: str
    labels: Mapping[str, str] = field(default_factory=dict)


def _bad(where: str, key: str, expected: str, found: Any) -> CheckConfigError:
    return CheckConfigError(f"{where}: key {key!r}: expected {expected}, found {found!r}")


def _check_inline(value: Any, where: str) -> None:
    if not isinstance(value, list) or not value:
        raise _bad(where, "targets", "a non-empty list of targets", value)
    for item in value:
        _member(item, f"{where}: key 'targets'", bad_type=CheckConfigError)


def _check_file(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _bad(where, "targets_file", "a path", value)


def _check_dns(value: Any, where: str) -> None:
    if not isinstance(value, str) or not _dns_form(value):
        expected = '"name:port" (A/AAAA) or "_service._tcp.name" (SRV)'
        raise _bad(where, "targets_dns", expected, value)


def _check_prometheus(value: Any, where: str) -> None:
    shape = isinstance(value, Mapping) and set(value) <= {"url", "job"}
    if not shape or not all(isinstance(value.get(k), str) for k in ("url", "job")):
        expected = '{ url = "{prometheus}", job = "NAME" }'
        raise _bad(where, "targets_prometheus", expected, value)


def _check_command(value: Any, where: str) -> None:
    from .command import argv_of

    try:
        argv_of(value)
    except ValueError as exc:
        raise _bad(where, "targets_command", f"an argv ({exc})", value) from None


_CHECKS = {
    "targets": _check_inline,
    "targets_file": _check_file,
    "targets_dns": _check_dns,
    "targets_prometheus": _check_prometheus,
    "targets_command": _check_command,
}


def validate(spec: Mapping[str, Any], where: str) -> None:
    """Exactly one source, each of the shape it takes."""
    given = [k for k in SOURCES if k in spec]
    if len(given) != 1:
        raise CheckConfigError(
            f"{where}: expected exactly one of {', '.join(SOURCES)}, found {', '.join(given)}"
        )
    _CHECKS[given[0]](spec[given[0]], where)
    if "resolver" in spec:
        from .tcp import check_hostport

        if given[0] != "targets_dns":
            raise _bad(where, "resolver", "only with targets_dns", spec["resolver"])
        check_hostport(spec, "resolver", where)
    seconds = spec.get("discovery_timeout", 1)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise _bad(where, "discovery_timeout", "a number of seconds > 0", seconds)


def _dns_form(value: str) -> bool:
    if value.startswith("_"):
        return "._tcp." in value or "._udp." in value
    name, _, port = value.rpartition(":")
    return bool(name) and port.isdigit() and 0 < int(port) < 65536


def _member(item: Any, where: str, bad_type: type[Exception] = DiscoveryFailed) -> Member:
    if isinstance(item, str) and len(item.split()) == 1:  # one word: no inner whitespace
        return Member(item.strip())
    if isinstance(item, Mapping) and isinstance(item.get("target"), str) and item["target"]:
        labels = item.get("labels", {})
        if isinstance(labels, Mapping) and all(isinstance(v, str) for v in labels.values()):
            return Member(item["target"].strip(), {str(k): v for k, v in labels.items()})
    raise bad_type(
        f'{where}: expected a target string or {{target = "...", labels = {{...}}}}, '
        f"found {item!r}"[:300]
    )


def parse_listing(text: str, origin: str) -> list[Member]:
    """One target per line (``#`` comments and blank lines skipped), or a JSON list of
    target strings or ``{"target": ..., "labels": {...}}`` objects."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise DiscoveryFailed(f"{origin}: not valid JSON ({exc})") from None
        if not isinstance(items, list):
            raise DiscoveryFailed(f"{origin}: expected a JSON list")
        return [_member(item, origin) for item in items]
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [_member(line, origin) for line in lines if line]


def discover(spec: Mapping[str, Any], target: Target) -> tuple[list[Member], str]:
    """The fleet's members (in order, duplicates dropped) and where they came from."""
    timeout = float(spec.get("discovery_timeout", DISCOVERY_TIMEOUT))
    deadline = time.monotonic() + timeout
    source = next(k for k in SOURCES if k in spec)
    value = spec[source]
    if source == "targets":
        members, origin = [_member(v, "targets") for v in value], "targets"
    elif source == "targets_file":
        members, origin = _from_file(target, value), f"targets_file {value}"
    elif source == "targets_dns":
        from .dns_targets import from_dns

        members, origin = from_dns(value, spec.get("resolver"), deadline), f"DNS {value}"
    elif source == "targets_prometheus":
        members = _from_prometheus(value, target, timeout)
        origin = f"Prometheus job {value['job']}"
    else:
        members, origin = _from_command(value, target, timeout), "targets_command"
    unique = list({m.target: m for m in members}.values())
    if not unique:
        raise DiscoveryFailed(f"{origin} listed no targets")
    return unique, origin


def _from_file(target: Target, value: str) -> list[Member]:
    path = target.path(value)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_LISTING_BYTES + 1)
    except OSError as exc:
        raise DiscoveryFailed(f"targets_file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_LISTING_BYTES:
        raise DiscoveryFailed(f"targets_file {path}: larger than {MAX_LISTING_BYTES} bytes")
    return parse_listing(data.decode("utf-8", "replace"), f"targets_file {path}")


def _from_prometheus(value: Mapping[str, Any], target: Target, timeout: float) -> list[Member]:
    """Every target of the job's ``up`` series, up or down (a target Prometheus cannot
    scrape is still part of the fleet), with its labels."""
    from .http_session import session_for

    job = value["job"].replace("\\", "\\\\").replace('"', '\\"')
    session = session_for(target, timeout=timeout)
    url = value["url"].rstrip("/") + "/api/v1/query"
    try:
        with session:
            response = session.get(url, params={"query": f'up{{job="{job}"}}'})
            series = response.json()["data"]["result"]
    except CheckFailed as exc:
        raise DiscoveryFailed(f"Prometheus {session.redact(url)}: {exc.message}") from None
    except (ValueError, KeyError, TypeError):
        raise DiscoveryFailed(f"Prometheus {session.redact(url)}: not a query answer") from None
    members = []
    for item in series:
        labels = {k: str(v) for k, v in item.get("metric", {}).items() if k != "__name__"}
        if labels.get("instance"):
            members.append(Member(labels["instance"], labels))
    return members


def _from_command(value: Any, target: Target, timeout: float) -> list[Member]:
    """The command's stdout, run like the ``command`` kind: no shell, its own process
    group killed at the deadline, output bounded."""
    from ..process import Tail, collect, kill_group
    from .command import argv_of

    argv = argv_of(value)
    env = {k: v for k, v in os.environ.items()}
    try:
        proc = subprocess.Popen(
            argv,
            cwd=target.rootdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise DiscoveryFailed(f"targets_command {argv[0]}: {exc.strerror or exc}") from None
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Tail(proc.stdout.fileno(), MAX_LISTING_BYTES), Tail(proc.stderr.fileno(), 2000)
    try:
        code = collect(proc, [out, err], timeout)
    finally:
        if proc.returncode is None:
            kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    name = f"targets_command {argv[0]}"
    if code is None:
        raise DiscoveryFailed(f"{name} did not finish within {timeout:g} s")
    if code != 0:
        last = (err.text().strip().splitlines() or [""])[-1][:200]
        said = f": {last}" if last else ""
        raise DiscoveryFailed(redact(f"{name} exited with {code}{said}", target.secrets))
    if out.truncated:
        raise DiscoveryFailed(f"{name}: output larger than {MAX_LISTING_BYTES} bytes")
    return parse_listing(out.text(), name)
