"""Fleet checks: one ``http``, ``tls`` or ``tcp`` check over many targets, decided by a quorum.

A check with ``targets``, ``targets_file``, ``targets_dns``, ``targets_prometheus`` or
``targets_command`` is a fleet check: its kind module hands it here (one line in its
``validate`` and ``run``). The targets are found (:mod:`.targets`), probed on one event
loop (:mod:`.aio_http`, :mod:`.aio_net`) with at most ``concurrency`` probes in flight,
and the quorum (:mod:`.quorum`) decides. A fleet that cannot be seen blocks (the
``fleet_unseen`` detail: never a pass of zero targets, never a rollback).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..redact import redact
from .base import CheckConfigError, Outcome, Target

if TYPE_CHECKING:  # imported when a fleet check runs: tcp, tls and http import this module
    import asyncio

    from .aio_net import Result

SOURCES = ("targets", "targets_file", "targets_dns", "targets_prometheus", "targets_command")

__all__ = ["EVENT_LOOP_CONCURRENCY", "KEYS", "configure", "run", "validate", "wanted"]

_SOURCE_KEYS: dict[str, type | tuple[type, ...]] = {
    "targets": list,
    "targets_file": str,
    "targets_dns": str,
    "resolver": str,
    "targets_prometheus": dict,
    "targets_command": (str, list),
    "discovery_timeout": (int, float),
    "min_healthy": (str, int),
    "max_unhealthy_per_label": dict,
}
# the keys a kind takes when it is a fleet check, besides its own
KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "http": {**_SOURCE_KEYS, "scheme": str, "server_name": str},
    "tls": dict(_SOURCE_KEYS),
    "tcp": dict(_SOURCE_KEYS),
}
# The keys of each kind that the event-loop engine implements. Any other key of the kind
# (the posture keys, say) would be silently unchecked on a fleet: a config error instead.
ENGINE_KEYS: dict[str, frozenset[str]] = {
    "http": frozenset(
        {"http", "method", "headers", "expect_status", "expect_json", "expect_body"}
        | {"max_latency_ms", "max_body_bytes"}
    ),
    "tls": frozenset({"tls", "min_days_valid", "min_version", "server_name"}),
    "tcp": frozenset({"tcp"}),
}
EVENT_LOOP_CONCURRENCY = 1024
THREADED_DEFAULT = 64  # config.DEFAULT_CONCURRENCY: "not set" for the event loop
_FD_RESERVE = 128  # descriptors kept for everything else in the process

_settings: dict[str, int] = {}


def configure(concurrency: int, *, uvloop: bool = True) -> None:
    """``[promotion] concurrency``: the cap on probes in flight. Left at the threaded
    pool's default (64), the event loop takes its own (1,024). ``uvloop=False``: asyncio's
    own loop even where uvloop is installed (the tests run the engine on both)."""
    _settings["concurrency"] = concurrency
    _settings["uvloop"] = int(uvloop)


def _concurrency() -> int:
    value = _settings.get("concurrency", THREADED_DEFAULT)
    return EVENT_LOOP_CONCURRENCY if value == THREADED_DEFAULT else value


def wanted(spec: Mapping[str, Any]) -> bool:
    """Whether the check names its targets (a fleet check)."""
    return any(key in spec for key in SOURCES)


def _default_port(kind: str, value: str) -> int | None:
    """``tcp = ":5432"``: the port of targets given without one; ``"*"``: none."""
    return None if value.strip() == "*" else int(value.strip()[1:])


def validate(spec: Mapping[str, Any], where: str, kind: str) -> None:
    from . import kind_module, quorum, targets

    own = set(kind_module(kind).KEYS) - set(KEYS[kind]) - ENGINE_KEYS[kind]
    unsupported = sorted(key for key in spec if key in own)
    if unsupported:
        raise CheckConfigError(
            f"{where}: key {unsupported[0]!r}: not checked on a fleet (a check with targets "
            f"takes {', '.join(sorted(ENGINE_KEYS[kind] - {kind}))}); declare it in a check "
            "of its own without targets"
        )
    targets.validate(spec, where)
    quorum.validate(spec, where)
    value = spec.get(kind)
    single = {k: v for k, v in spec.items() if k not in KEYS[kind] or k == "server_name"}
    if kind == "http":
        if not isinstance(value, str) or "://" in value:
            raise CheckConfigError(
                f"{where}: key 'http': expected the path each target's base URL gets "
                f"(like /health) when the check has targets, found {value!r}"
            )
        name = spec.get("server_name", "x")
        if not isinstance(name, str) or not name or any(c in name for c in " /:@"):
            raise CheckConfigError(
                f"{where}: key 'server_name': expected a host name, found {name!r}"
            )
        if spec.get("scheme", "https") not in ("http", "https"):
            raise CheckConfigError(
                f'{where}: key \'scheme\': expected "http" or "https", found {spec["scheme"]!r}'
            )
    else:
        text = value.strip() if isinstance(value, str) else ""
        if not (
            text == "*" or (text[:1] == ":" and text[1:].isdigit() and 0 < int(text[1:]) < 65536)
        ):
            raise CheckConfigError(
                f'{where}: key {kind!r}: expected ":PORT" (for targets without one) or "*" '
                f"when the check has targets, found {value!r}"
            )
        single[kind] = "fleet.invalid:1"
    kind_module(kind).validate(single, where)


def run(spec: Mapping[str, Any], target: Target, kind: str) -> Outcome:
    import asyncio

    from . import quorum, targets

    try:
        members, origin = targets.discover(spec, target)
    except targets.DiscoveryFailed as exc:
        text = redact(f"fleet not seen, nothing was probed: {exc}", target.secrets)
        return Outcome(False, text, rollback=False, details={"fleet_unseen": True})
    if "timeout" in spec:
        target = target.with_timeout(spec["timeout"])
    limit, note = _open_files(_concurrency())
    with _fewer_collections(), asyncio.Runner(loop_factory=event_loop()) as runner:
        probes = _probe_all(kind, spec, target, [m.target for m in members], limit)
        results = runner.run(probes)
    outcome = quorum.decide(spec, members, results, origin)
    outcome.details["concurrency"] = limit
    if note:
        outcome.details.setdefault("warnings", []).append(note)
        outcome.message += f"; {note}"
    outcome.message = _mask(outcome.message, target.secrets)
    seen: dict[str, str] = {}  # messages repeat ("200 in 3 ms"): each masked once
    for entry in outcome.details["targets"]:  # the JSON report's copy: masked the same way
        entry["target"] = _mask(entry["target"], target.secrets)
        message = entry["message"]
        if message not in seen:
            seen[message] = _mask(message, target.secrets)
        entry["message"] = seen[message]
    return outcome


def _mask(text: str, secrets: tuple[str, ...]) -> str:
    """Credentials in URLs, secret-looking query values and the environment's secrets."""
    # Without secrets, none of the patterns can match an ASCII text without "@" (a URL's
    # password), "=" (a query value, password=) or "authorization": a plain target is
    # returned as it is (30 us a target otherwise, a tenth of a probe). (ASCII: with
    # IGNORECASE, a dotless i (U+0131) matches "i".)
    plain = "@" not in text and "=" not in text and text.isascii()
    plain = plain and "authorization" not in text.lower()
    if plain and not secrets:
        return text
    from ..redact import redact_url
    from .http_session import _QUERY_SECRET

    return redact(_QUERY_SECRET.sub(r"\1***", redact_url(text)), secrets)


async def _probe_all(
    kind: str, spec: Mapping[str, Any], target: Target, members: Sequence[str], limit: int
) -> list[Result]:
    """Every member probed, at most ``limit`` at once; the rest wait in order."""
    if kind == "http":
        from .aio_http import HttpProbe

        http = HttpProbe(spec, target)
        try:
            return await bounded(http, members, limit)
        finally:
            await http.aclose()
    from .aio_net import TcpProbe, TlsProbe

    port = _default_port(kind, str(spec[kind]))
    net = (TlsProbe if kind == "tls" else TcpProbe)(spec, target, port)
    return await bounded(net, members, limit)


async def bounded(
    probe: Callable[[str], Awaitable[Result]], members: Sequence[str], limit: int
) -> list[Result]:
    """``probe`` over every member, at most ``limit`` at once; the others wait in order:
    ``limit`` workers take the next member from one shared iterator as each finishes (no
    task nor semaphore waiter per member)."""
    import asyncio

    results: list[Result | None] = [None] * len(members)
    queue = enumerate(members)

    async def worker() -> None:
        for index, member in queue:
            results[index] = await probe(member)

    await asyncio.gather(*(worker() for _ in range(min(limit, len(members)))))
    return cast("list[Result]", results)


def event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (``pytest-promotion[uvloop]``: its TLS in C
    takes ~10 % less CPU per https probe; no gain measured for plain http), else asyncio's
    (``None``); see :func:`configure`."""
    if not _settings.get("uvloop", 1):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return cast("Callable[[], asyncio.AbstractEventLoop]", uvloop.new_event_loop)


_gc_lock = threading.Lock()
_gc_users: list[tuple[int, int, int]] = []  # the thresholds to restore, per fleet running
GC_YOUNG = 50_000


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect the youngest generation every 50,000 allocations instead of 700 while
    probes run: a probe allocates a few dozen short-lived objects and leaves almost no
    cycle, and each young collection also walks the thousands of probes in flight (about
    a tenth of the probe phase's CPU at 10,000 targets). Garbage is still collected, less
    often; the thresholds come back when the last fleet running in the process ends."""
    import gc

    with _gc_lock:
        _gc_users.append(gc.get_threshold())
        young, middle, old = _gc_users[0]
        if 0 < young < GC_YOUNG:
            gc.set_threshold(GC_YOUNG, middle, old)
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users.pop()
            if not _gc_users:  # the first fleet's thresholds are the process's own
                gc.set_threshold(young, middle, old)


def _open_files(wanted: int) -> tuple[int, str | None]:
    """Raise the soft RLIMIT_NOFILE towards the hard one for ``wanted`` probes in flight;
    the concurrency the limit allows, and a note when it had to be lowered."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to raise
        return wanted, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + _FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted, None
    allowed = max(soft - _FD_RESERVE, 1)
    return allowed, (
        f"concurrency lowered to {allowed}: the open-file limit is {soft} (hard limit {hard})"
    )
