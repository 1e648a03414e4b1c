"""Set up one watch from the config: its settings, its checks, its ledger (journal,
baselines, the rollback target), the stop signal; used by ``promotion watch`` and by the
gate run's ``--promotion-watch``."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ..config import PromotionConfig
from ..ledger import LedgerError, open_store
from ..ledger.queries import last_known_good_in
from ..ledger.settings import ledger_url
from . import baselines as baseline_store
from .engine import Watch, WatchResult
from .journal import Journal, LedgerJournal
from .measure import watched_checks
from .pygates import PytestCall, PythonGates, standalone_call
from .relative import Baselines
from .settings import WatchSettings, parse_settings

__all__ = ["Stop", "WatchRequest", "on_signals", "run_watch", "settings_for"]


class Stop(threading.Event):
    """The watch's stop signal, with why it was given."""

    reason = "stopped"

    def stop(self, reason: str) -> None:
        self.reason = reason
        self.set()


@contextmanager
def on_signals(stop: Stop) -> Iterator[None]:
    """SIGTERM (and SIGINT) end the watch between measurements, incomplete (main thread
    only; elsewhere the caller's own handling applies)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.stop(f"{signal.Signals(signum).name} received")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def settings_for(config: PromotionConfig, env: str, duration: object = None,
                 interval: object = None) -> WatchSettings:  # fmt: skip
    """The environment's ``watch`` table with the command line over it (ValueError: one
    line naming the file, table and key)."""
    table = config.tables.get(env, {}).get("watch")
    where = f"{config.label}: [environments.{env}.watch]"
    if duration is not None and table is None:
        where = "--promotion-watch" if interval is None else where
    return parse_settings(table, where, duration=duration, interval=interval)


@dataclass
class WatchRequest:
    config: PromotionConfig
    env: str
    settings: WatchSettings
    version: str | None
    digest: str | None = None
    actor: str = "unknown"
    ledger_option: str | None = None
    previous_version: str | None = None
    execute: bool = False
    # the gate run rolls back itself (its pipeline, with its hook): write no rollback
    # record when it executes the command (it records the result)
    caller_executes: bool = False
    decision_record: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    # how the Python gates' child pytest is started (a gate run's own call; None: from
    # the config's directory, as ``promotion watch`` does)
    pytest_call: PytestCall | None = None


def run_watch(request: WatchRequest, progress: Callable[[str], None],
              stop: Stop | None = None) -> WatchResult:  # fmt: skip
    """Run the watch to its end (ConfigError / LedgerError for a bad ledger setting)."""
    config, env = request.config, request.env
    environment = config.environment(env)
    base = config.path.parent if config.path else config.rootdir
    url, secrets = ledger_url(request.ledger_option, config.options, request.environ, config.label)
    journal: Journal = Journal(env, request.version, request.digest, request.actor)
    baselines = Baselines(unavailable="the ledger is off (ledger = false)")
    previous = request.previous_version
    store: Any = None
    if url is not None:
        try:
            store = open_store(url, base, secrets=secrets)
            journal = LedgerJournal(store, env, request.version, request.digest, request.actor,
                                    Path(base), secrets)  # fmt: skip
            baselines = baseline_store.load(store, env, request.version)
            if previous is None:
                good = last_known_good_in(store, env, exclude=request.version)
                previous = good.version if good is not None else None
        except LedgerError as exc:
            journal = LedgerJournal.unreachable(str(exc), env, request.version, request.digest,
                                                request.actor, Path(base), secrets)  # fmt: skip
            baselines = Baselines(unavailable=f"the ledger cannot be read: {exc}")
    python = None
    if request.settings.python_gates:
        call = request.pytest_call or standalone_call(Path(config.rootdir), config.path)
        python = PythonGates(call, env, version=request.version, previous_version=previous,
                             timeout=request.settings.python_deadline,
                             secrets=environment.secrets)  # fmt: skip
    watch = Watch(environment, watched_checks(environment), request.settings, journal,
                  previous_version=previous, execute=request.execute, baselines=baselines,
                  concurrency=config.concurrency, progress=progress, stop=stop,
                  caller_executes=request.caller_executes,
                  decision_record=request.decision_record, python=python)  # fmt: skip
    try:
        return watch.run()
    finally:
        if store is not None:
            store.close()
