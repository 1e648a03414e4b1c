"""The promotion ledger: who promoted what, where, when, on what evidence.

Append-only records (one per decision, approval, reject, revoke, invalidation, rollback)
in SQLite (the default, ``.promotion/ledger.sqlite3`` beside the config file) or a
shared PostgreSQL; the policy rules over them; the run's lease on its environment.
See docs/ledger.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import RunContext
from .model import POLICY_KINDS, Record
from .url import LedgerError

if TYPE_CHECKING:
    from .store import Store, open_store

__all__ = [
    "POLICY_KINDS",
    "LedgerError",
    "Record",
    "RunContext",
    "Store",
    "open_context_store",
    "open_store",
]


def open_context_store(context: RunContext, timeout: float = 10.0) -> Store:
    """The ledger of a run (its URL and base directory); LedgerError when it is off."""
    if context.url is None:
        raise LedgerError("the ledger is off (ledger = false)")
    from .store import open_store

    return open_store(context.url, Path(context.base), timeout=timeout, secrets=context.secrets)


def __getattr__(name: str) -> Any:
    """``Store`` and ``open_store`` on first use: the store module (and its schema) is not
    imported by a run with the ledger off."""
    if name in ("Store", "open_store"):
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
