"""The promotion ledger: who promoted what, where, when, on what evidence.

Append-only records (one per decision, approval, reject, revoke, invalidation, rollback)
in SQLite (the default, ``.promotion/ledger.sqlite3`` beside the config file) or a
shared PostgreSQL; the policy rules over them; the run's lease on its environment.
See docs/ledger.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .switch import POLICY_KINDS
from .url import LedgerError

if TYPE_CHECKING:
    from .context import RunContext
    from .model import Record
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


_LAZY = {"Store": "store", "open_store": "store", "Record": "model", "RunContext": "context"}


def __getattr__(name: str) -> Any:
    """The store, the record model and the run context on first use: a run with the ledger
    off (and no policy gate) imports none of them, nor the store's schema."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
