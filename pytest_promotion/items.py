"""Declarative checks from the config as pytest items: one item, one id, one JUnit case."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .records import FLEET_TARGETS_KEY
from .redact import redact
from .untrusted import block, one_line

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .check_spec import CheckSpec
    from .checks.base import Outcome
    from .checks.pool import ProbePool
    from .config import Environment

__all__ = [
    "CheckFailure",
    "CheckItem",
    "EarlyStart",
    "EnvironmentCollector",
    "Prefetch",
    "prefetch_key",
]


def probe_check(
    check: CheckSpec,
    environment: Environment,
    on_attempt: Callable[[str, int, Outcome], None] | None = None,
) -> Outcome:
    """One run of a declarative check against its environment (any thread)."""
    from .checks.runner import run_check

    outcome = run_check(
        check,
        environment.target(),
        on_attempt=(lambda n, o: on_attempt(check.id, n, o)) if on_attempt else None,
    )
    from .watch.relative import apply_for_run  # relative criteria (docs/watch.md)

    return apply_for_run(check, outcome)


class CheckFailure(Exception):
    """A declarative check did not pass; carries its Outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class EnvironmentCollector(pytest.Collector):
    """The parent of one environment's declarative checks (node id: the environment)."""

    def __init__(self, *, environment: Environment, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environment = environment

    def collect(self) -> list[pytest.Item]:
        return [
            CheckItem.from_parent(self, name=check.name, check=check, environment=self.environment)
            for check in self.environment.checks
        ]


class CheckItem(pytest.Item):
    """One ``[[environments.NAME.checks]]`` entry."""

    def __init__(self, *, check: CheckSpec, environment: Environment, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.environment = environment
        self.add_marker(getattr(pytest.mark, environment.name)(only=True))
        self.add_marker(pytest.mark.gate(name=check.id))

    future: Future[Outcome] | None = None
    on_attempt: Callable[[str, int, Outcome], None] | None = None

    def probe(self) -> Outcome:
        """Run the check (in the item's thread or a pool thread): the same code either way,
        so concurrency 1 and 64 give the same outcomes."""
        return probe_check(self.check, self.environment, self.on_attempt)

    def launch(self, pool: ProbePool) -> None:
        """Start the probe early on ``pool``; runtest() then only collects its outcome."""
        self.future = pool.submit(self.probe)

    def runtest(self) -> None:
        from .gate import recorder_for

        recorder = recorder_for(self)
        outcome = self.future.result() if self.future is not None else self.probe()
        outcome.message = redact(outcome.message, self.environment.secrets)
        recorder.record(outcome)
        recorder.message = outcome.message
        for warning in outcome.details.get("warnings", []):
            self.user_properties.append(
                ("promotion.warning", redact(str(warning), self.environment.secrets))
            )
        if "targets" in outcome.details:  # a fleet check: each target's outcome, for the report
            self.user_properties.append((FLEET_TARGETS_KEY, outcome.details["targets"]))
        if not outcome.passed:
            raise CheckFailure(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailure):
            outcome = excinfo.value.outcome
            lines = [f"{self.check.id}: {one_line(outcome.message)}"]  # outside text
            tail = outcome.details.get("output_tail")
            if tail:
                lines += ["", "output (tail):", block(redact(str(tail), self.environment.secrets))]
            return "\n".join(lines)
        # A crash in a check module is a bug of ours; still show it, with secrets masked.
        text = str(super().repr_failure(excinfo))
        return redact(text, self.environment.secrets)

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return (self.path, None, f"{self.check.kind} check {self.check.id}")


class Prefetch:
    """The ``@pytest.mark.probe(kind, value, name=..., **keys)`` probes of one Python gate,
    started with the declarative checks and read with ``probe.result(name)``."""

    def __init__(self, environment: Environment, marks: list[pytest.Mark]) -> None:
        self.environment = environment
        self.specs: dict[str, tuple[str, Any, dict[str, Any]]] = {}
        for mark in marks:
            if len(mark.args) != 2:
                raise pytest.UsageError(
                    f"@pytest.mark.probe expects (kind, value, name=..., **keys), got {mark.args!r}"
                )
            kind, value = mark.args
            keys = dict(mark.kwargs)
            name = str(keys.pop("name", kind))
            # marks come closest first: the test's own probe wins over its module's
            self.specs.setdefault(name, (kind, value, keys))
        self.futures: dict[str, Future[Outcome]] = {}

    def _run(self, name: str) -> Outcome:
        from .probes import Probe

        kind, value, keys = self.specs[name]
        return Probe(self.environment).run(kind, value, **keys)

    def launch(self, pool: ProbePool) -> None:
        for name in self.specs:
            self.futures[name] = pool.submit(functools.partial(self._run, name))

    def result(self, name: str) -> Outcome:
        """The probe's outcome: waited for if it was started early, else run now."""
        future = self.futures.get(name)
        return future.result() if future is not None else self._run(name)


prefetch_key = pytest.StashKey[Prefetch]()


def _concurrent(check: CheckSpec) -> bool:
    from .checks import registry

    return registry.get(check.kind).CONCURRENT


def _prepare(kinds: set[str]) -> None:
    """Every import a pool thread needs, done here, in this thread, before it starts: N
    threads importing at once queue on the import lock, and with pytest's assertion-
    rewriting import hook CPython 3.11 can even fail ("AST constructor recursion depth
    mismatch")."""
    from .checks import registry
    from .checks.runner import run_check  # noqa: F401

    for kind in sorted(kinds & set(registry.names())):  # an unknown kind fails in its item
        registry.get(kind).prepare()


class EarlyStart:
    """The environment's network checks, started when the session starts, before pytest
    has collected anything: a gate run's floor is then pytest's start-up plus one timeout,
    not start-up + collection + one timeout. Only used when the selection cannot drop a
    check (no -k, -m, --deselect, --lf, no xdist): start_early() hands each item its
    future and cancels any a conftest deselected anyway."""

    def __init__(
        self,
        environment: Environment,
        concurrency: int,
        on_attempt: Callable[[str, int, Outcome], None] | None,
    ) -> None:
        checks = [c for c in environment.checks if _concurrent(c)]
        self.futures: dict[str, Future[Outcome]] = {}
        self.pool: ProbePool | None = None
        if concurrency < 2 or len(checks) < 2:
            return
        from .checks.pool import ProbePool

        _prepare({c.kind for c in checks})
        self.pool = ProbePool(concurrency)
        for check in checks:
            self.futures[check.id] = self.pool.submit(
                functools.partial(probe_check, check, environment, on_attempt)
            )
        self.grace = min(1.0, environment.timeout)

    def let_them_start(self) -> None:
        """Collection is CPU work under the same GIL: do it while the probes wait for their
        answers, not while they are still getting their requests out. Bounded: when more
        checks hang than there are threads, the queue drains only after a timeout."""
        if self.pool is not None:
            self.pool.wait_dispatched(timeout=self.grace)


def start_early(
    items: Sequence[pytest.Item],
    concurrency: int,
    early: EarlyStart | None = None,
    probed: Sequence[pytest.Item] | None = None,
) -> ProbePool | None:
    """Start every selected network probe (declarative checks of a ``CONCURRENT`` kind and
    every ``@pytest.mark.probe``) at once on a pool of ``concurrency`` threads, so a broken
    environment costs about one timeout, not one per check. Quality kinds (coverage,
    command, bandit, ...) are CPU-bound and may read what an earlier check wrote: they run
    in their item's turn. Checks ``early`` already started keep their futures. ``probed``:
    the items that may carry a ``probe`` marker's Prefetch, when known (else ``items``).
    Returns the pool, or None when there is nothing to overlap."""
    launch = [item for item in items if isinstance(item, CheckItem) and _concurrent(item.check)]
    candidates = items if probed is None else probed
    prefetch = [item.stash[prefetch_key] for item in candidates if prefetch_key in item.stash]
    pool = early.pool if early is not None else None
    if pool is not None:
        assert early is not None
        for item in launch:
            item.future = early.futures.pop(item.check.id, None)
        launch = [item for item in launch if item.future is None]
        for unused in early.futures.values():  # deselected after all: not waited for
            unused.cancel()
        early.futures.clear()
    elif concurrency < 2 or len(launch) + len(prefetch) < 2:
        return None
    kinds = {item.check.kind for item in launch}
    if prefetch:
        from . import probes  # noqa: F401 - what Prefetch runs in the pool's threads

        kinds |= {kind for p in prefetch for kind, _value, _keys in p.specs.values()}
    _prepare(kinds)
    if pool is None:
        from .checks.pool import ProbePool

        pool = ProbePool(concurrency)
    for item in launch:
        item.launch(pool)
    for marked in prefetch:
        marked.launch(pool)
    return pool


def progress_writer(reporter: Any) -> Callable[[str, int, Outcome], None]:
    """One writer for all waiting checks: each failed attempt becomes a terminal line at
    once, while the gate runs too (pytest's capture suspended for the line, as live
    logging does), so a two-minute wait shows every attempt, not only the first."""
    lock = threading.Lock()
    capture = reporter.config.pluginmanager.get_plugin("capturemanager")

    def write(check_id: str, attempt: int, outcome: Outcome) -> None:
        if outcome.passed:
            return
        line = f"waiting for {check_id}: attempt {attempt}: {outcome.message}"
        with lock, _capture_suspended(capture):
            reporter.ensure_newline()
            if reporter._tw.width_of_current_line:  # mid-line: "collected 15 items", a
                reporter._tw.line()  # test's "PASSED" not yet written (no newline yet)
            reporter.write_line(line, yellow=True)

    return write


@contextlib.contextmanager
def _capture_suspended(capture: Any) -> Iterator[None]:
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield
