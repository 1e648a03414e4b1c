"""One promotion at a time per environment: the run's lease, from its start to its record.

A second run waits up to ``lock_timeout`` (a progress line every ``PROGRESS`` seconds) and
then gives up with who holds it. On SQLite the lease is a row with an expiry, renewed by a
thread of the holder; on PostgreSQL an advisory lock on the holder's connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import open_context_store
from .model import short_time
from .store import LeaseInfo, LedgerError, Store

if TYPE_CHECKING:
    from .context import RunContext

__all__ = ["TTL", "Lease", "describe"]

TTL = 60.0  # seconds a SQLite lease lasts without its holder renewing it
PROGRESS = 15.0
POLL = 0.25


def describe(holder: LeaseInfo) -> str:
    """ "staging is being promoted by alice (v1.4.1, run <url>) since 14:02"."""
    bits = [holder.version or "no version"]
    if holder.run_url:
        bits.append(f"run {holder.run_url}")
    elif holder.host:
        bits.append(f"pid {holder.pid} on {holder.host}")
    since = short_time(holder.started_at)[11:] or "?"
    return f"{holder.environment} is being promoted by {holder.actor} ({', '.join(bits)}) since {since}"


class Lease:
    def __init__(self, store: Store, info: LeaseInfo, reopen: Callable[[], Store] | None) -> None:
        self.store = store
        self.info = info
        self.reopen = reopen  # SQLite: a connection of its own for the renewing thread
        self.held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_run(cls, store: Store, context: RunContext) -> Lease:
        """The lease a gate run asks ``store`` for (not acquired yet): a new holder id, the
        run's actor, version and URL; on SQLite renewed on a connection of its own."""
        assert context.url is not None
        info = LeaseInfo.mine(context.environment, os.urandom(8).hex(), context.actor,
                              context.version, context.run_url)  # fmt: skip
        reopen = (lambda: open_context_store(context)) if context.url.startswith("sqlite") else None
        return cls(store, info, reopen)

    def acquire(self, timeout: float, say: Callable[[str], None]) -> LeaseInfo | None:
        """Wait for the lease: None once held, else the holder when ``timeout`` passed."""
        start = time.monotonic()
        next_say = start
        while True:
            holder = self.store.try_lease(self.info, TTL)
            if holder is None:
                self.held = True
                self._renew()
                return None
            now = time.monotonic()
            if now - start >= timeout:
                return holder
            if now >= next_say:
                say(f"promotion: waiting for the lease: {describe(holder)} "
                    f"({now - start:.0f} s of {timeout:g} s)")  # fmt: skip
                next_say = now + PROGRESS
            time.sleep(min(POLL, max(0.0, timeout - (now - start))))

    def _renew(self) -> None:
        if self.reopen is None:
            return
        reopen = self.reopen

        def run() -> None:
            try:
                store = reopen()
            except LedgerError:
                return
            try:
                while not self._stop.wait(TTL / 3):
                    with contextlib.suppress(LedgerError):
                        store.try_lease(self.info, TTL)
            finally:
                store.close()

        self._thread = threading.Thread(target=run, name="promotion-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.held:
            self.held = False
            self.store.release(self.info)
