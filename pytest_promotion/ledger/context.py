"""What a policy gate needs to know of the run it judges: the seam between the plugin
(which knows pytest, the options and the config) and the policy check kinds (which know
none of them).

The ledger plugin builds one :class:`RunContext` on the controller when the run starts,
sends it to xdist workers in ``workerinput``, and :func:`set_current` makes it the one
:func:`current` returns in that process until :func:`clear`. A policy check that finds no
context for its environment fails (there is no ledger to ask): it never passes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["RunContext", "clear", "current", "set_current"]


@dataclass(frozen=True)
class RunContext:
    environment: str
    chain: tuple[str, ...]
    url: str | None  # None: ledger = false
    base: str  # the config file's directory: relative SQLite paths start here
    version: str | None
    version_source: str | None
    digest: str | None
    actor: str
    actor_source: str
    run_url: str | None = None
    commit: str | None = None
    config_hash: str | None = None
    rollback: tuple[str, ...] | None = None
    rollback_timeout: float = 600.0
    lock_timeout: float = 600.0
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunContext:
        data = dict(data)
        data["chain"] = tuple(data["chain"])
        data["secrets"] = tuple(data.get("secrets", ()))
        if data.get("rollback") is not None:
            data["rollback"] = tuple(data["rollback"])
        return cls(**data)


_CURRENT: list[RunContext] = []


def set_current(context: RunContext) -> None:
    _CURRENT[:] = [context]


def current(environment: str) -> RunContext | None:
    """The context of this process's run for ``environment``, if any."""
    return next((c for c in _CURRENT if c.environment == environment), None)


def clear() -> None:
    _CURRENT.clear()
