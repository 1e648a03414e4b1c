"""Baselines from the ledger: the gates' values in an environment's last good promotes.

A promote is good when its version was not rolled back or failed a gate later in that
environment (a record "against" it) and was not invalidated there or everywhere. The gate
run reads them once per process and environment (:func:`for_run`), the watch once at its
start (:func:`load`).
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..ledger import LedgerError, Store, open_store
from ..ledger.context import RunContext, current
from .relative import Baselines, merge_runs

__all__ = ["WINDOW", "for_run", "load"]

WINDOW = 500  # the newest records read: 500 decisions cover any baseline_runs (<= 50)

# the run's context object (identity: one per run) -> its environment's baselines
_CACHE: list[tuple[RunContext, Baselines]] = []
_LOCK = threading.Lock()


def load(store: Store, env: str, exclude_version: str | None) -> Baselines:
    """The good promotes of ``env`` (other than ``exclude_version``), newest first."""
    records = store.query(
        environments=[env, "*"],
        kinds=["decision", "rollback", "invalidation"],
        limit=WINDOW,
        full=True,
    )
    found = Baselines()
    against: set[str | None] = set()  # versions with a later failure (going newest first)
    for r in reversed(records):
        if r.kind == "invalidation" and r.environment in (env, "*"):
            against.add(r.version)
            continue
        if r.environment != env:
            continue
        if r.body.get("against"):
            against.add(r.version)
            continue
        if r.kind != "decision" or r.decision != "promote" or r.version in against:
            continue
        if exclude_version is not None and r.version == exclude_version:
            continue
        merge_runs(found.runs, r.id, r.version, r.body.get("gates", ()))
    return found


def for_run(env: str) -> Baselines:
    """The baselines of this process's gate run for ``env`` (read once, then cached):
    the ledger named by the run's context; ``unavailable`` says why there is none."""
    context = current(env)
    if context is None or context.url is None:
        return Baselines(unavailable="the ledger is off (ledger = false)")
    with _LOCK:
        if _CACHE and _CACHE[0][0] is context:
            return _CACHE[0][1]
        try:
            store = open_store(context.url, Path(context.base), secrets=context.secrets)
            try:
                found = load(store, env, context.version)
            finally:
                store.close()
        except LedgerError as exc:
            found = Baselines(unavailable=f"the ledger cannot be read: {exc}")
        _CACHE[:] = [(context, found)]
        return found


def for_any_run() -> Baselines:
    """The baselines of this process's gate run, whatever its environment (gate.measure
    does not know it)."""
    from ..ledger import context as run_context

    running = getattr(run_context, "_CURRENT", [])  # the one run of this process, if any
    if not running:
        return Baselines(unavailable="the ledger is off (ledger = false)")
    return for_run(running[0].environment)


def clear() -> None:
    with _LOCK:
        _CACHE.clear()
