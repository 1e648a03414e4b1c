"""The policy rules over a store, reading only what they need: an environment's newest
records first (a window), the whole history only when the window does not decide. A run
then costs the same on a ledger of ten records and of a hundred thousand."""

from __future__ import annotations

from .model import Record
from .policy import current, last_known_good
from .store import Store

__all__ = ["WINDOW", "current_in", "last_known_good_in", "recent"]

WINDOW = 500


def recent(store: Store, env: str, window: int | None = WINDOW) -> list[Record]:
    """``env``'s newest ``window`` records (None: all), with every invalidation that applies
    to it; oldest first."""
    records = store.query(environments=[env], limit=window)
    gone = store.query(environments=["*"], kinds=["invalidation"])
    return sorted([*records, *gone], key=lambda r: (r.recorded_at or "", r.seq))


def _full(store: Store, env: str, window: int) -> bool:
    """Whether the window holds all of ``env``'s records."""
    return len(store.query(environments=[env], limit=window + 1)) <= window


def last_known_good_in(store: Store, env: str, exclude: str | None = None) -> Record | None:
    found = last_known_good(recent(store, env), env, exclude)
    if found is None and not _full(store, env, WINDOW):
        found = last_known_good(recent(store, env, None), env, exclude)
    return found


def current_in(store: Store, env: str) -> tuple[str | None, Record | None]:
    found = current(recent(store, env), env)
    if found[1] is None and not _full(store, env, WINDOW):
        found = current(recent(store, env, None), env)
    return found
