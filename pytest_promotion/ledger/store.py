"""The ledger's storage: what every store does, the schema, and the URL that picks one.

    sqlite:///.promotion/ledger.sqlite3     (the default; relative to the config's directory)
    sqlite:////var/lib/promotion/ledger.sqlite3
    postgresql://user:${LEDGER_PASSWORD}@db.internal/promotion

Records are appended and never changed; an id already stored is skipped, so writing the
same record twice (``promotion ledger sync`` after a partial failure) stores it once.
"""

from __future__ import annotations

import json
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import Record
from .schema import Dialect
from .url import DEFAULT_URL, LedgerError, resolve_url

__all__ = [
    "DEFAULT_URL",
    "SCHEMA_VERSION",
    "LeaseHeld",
    "LeaseInfo",
    "LedgerError",
    "Store",
    "open_store",
    "summary_of",
]

SCHEMA_VERSION = 1


@dataclass
class LeaseInfo:
    """Who holds (or asks for) an environment's lease."""

    environment: str
    holder: str
    actor: str
    version: str | None
    run_url: str | None
    started_at: str
    host: str = ""
    pid: int = 0

    @classmethod
    def mine(
        cls, environment: str, holder: str, actor: str, version: str | None, run_url: str | None
    ) -> LeaseInfo:
        return cls(
            environment, holder, actor, version, run_url, "", socket.gethostname(), os.getpid()
        )


class LeaseHeld(Exception):
    """Another run holds the lease."""

    def __init__(self, info: LeaseInfo | None) -> None:
        super().__init__(info)
        self.info = info


def summary_of(record: Record) -> tuple[int, str]:
    """(whether the record is evidence against its version, a short "why") for a decision:
    a rollback, or a failed gate that is not a policy gate and carries no waiver. Errors
    (nothing measured), interrupts, lease time-outs and policy failures are not evidence."""
    if record.kind == "rollback":
        return 1, "rollback"
    if record.kind != "decision":
        return 0, ""
    failed = [
        str(g.get("id"))
        for g in record.body.get("gates", ())
        if g.get("outcome") == "failed" and not g.get("waiver") and not g.get("policy")
    ]
    if failed:
        return 1, "gate " + ", ".join(failed[:3]) + (", ..." if len(failed) > 3 else "")
    reasons = record.body.get("reasons") or []
    if record.decision == "rollback":
        return 1, str(reasons[0])[:200] if reasons else "rollback"
    return 0, str(reasons[0])[:200] if reasons else ""


def lease_from_row(environment: str, row: Sequence[Any]) -> LeaseInfo:
    """A lease read back (:data:`.schema.LEASE_COLUMNS`, in that order)."""
    holder, actor, version, run_url, started_at, host, pid = row[:7]
    return LeaseInfo(environment, holder, actor, version, run_url, started_at, host, int(pid))


def row_to_record(row: Sequence[Any], body: str | None) -> Record:
    """A record read back (:data:`.schema.RECORD_COLUMNS`, then its body or None)."""
    return Record(
        id=row[0],
        seq=int(row[1]),
        kind=row[2],
        environment=row[3],
        version=row[4],
        digest=row[5],
        decision=row[6],
        actor=row[7],
        recorded_at=row[8],
        body={**(json.loads(body) if body else {}), "against": bool(row[9]), "summary": row[10]},
    )


class Store(ABC):
    """One ledger. ``shown`` is its URL without a password, for every message; its
    ``dialect`` spells the statements of :mod:`.schema` for its database."""

    shown: str
    dialect: Dialect

    @abstractmethod
    def now(self) -> str:
        """The ledger's clock (UTC, :func:`~.model.format_time`): every time in a record."""

    @abstractmethod
    def append(self, records: Sequence[Record]) -> list[str]:
        """Store the records in one transaction; the ids newly written (known ones skipped).
        A record without ``recorded_at`` gets the ledger's clock."""

    def query(
        self,
        *,
        environments: Sequence[str] | None = None,
        version: str | None = None,
        kinds: Sequence[str] | None = None,
        exclude_kinds: Sequence[str] | None = None,
        limit: int | None = None,
        full: bool = False,
    ) -> list[Record]:
        """Records, oldest first (the newest ``limit`` ones when given), of ``kinds`` and
        not of ``exclude_kinds`` when given. Without ``full`` a decision's body (its
        gates) is not read: the columns and summary suffice."""
        sql, args = self.dialect.select_records(environments=environments, version=version,
                                                kinds=kinds, exclude_kinds=exclude_kinds,
                                                limit=limit, full=full)  # fmt: skip
        return [row_to_record(r[:-1], r[-1]) for r in reversed(self.fetch(sql, args))]

    def get(self, prefix: str) -> list[Record]:
        """The records whose id starts with ``prefix`` (whole)."""
        sql, args = self.dialect.select_by_prefix(prefix)
        return [row_to_record(r[:-1], r[-1]) for r in self.fetch(sql, args)]

    def schema_version(self) -> int:
        sql = f"SELECT max(version) FROM {self.dialect.versions}"  # noqa: S608
        return int(self.fetch(sql, [])[0][0])

    @abstractmethod
    def fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        """The rows of a read; :class:`LedgerError` when the ledger cannot answer."""

    @abstractmethod
    def try_lease(self, info: LeaseInfo, ttl: float) -> LeaseInfo | None:
        """Take or renew the environment's lease: None when ours, else the holder's info."""

    @abstractmethod
    def release(self, info: LeaseInfo) -> None:
        """Give the lease back (no-op when not ours)."""

    @abstractmethod
    def close(self) -> None: ...

    def records_to_rows(
        self, records: Sequence[Record], now: Callable[[], str]
    ) -> list[tuple[Any, ...]]:
        rows = []
        for r in records:
            against, summary = summary_of(r)
            body = {k: v for k, v in r.body.items() if k not in ("against", "summary")}
            rows.append(
                (r.id, r.kind, r.environment, r.version, r.digest, r.decision, r.actor,
                 r.recorded_at or now(), against, summary, json.dumps(body, default=str))
            )  # fmt: skip
        return rows


def open_store(
    url: str, base: Path, *, timeout: float = 10.0, secrets: Sequence[str] = ()
) -> Store:
    """Open (and create or migrate) the ledger at ``url``; relative SQLite paths are from
    ``base`` (the config file's directory)."""
    url, path = resolve_url(url, base)
    if path is not None:
        from .sqlite_store import SqliteStore

        return SqliteStore(path, timeout=timeout)
    from .pg_store import PostgresStore

    return PostgresStore(url, timeout=timeout, secrets=secrets)


def newer_schema(found: int, shown: str) -> LedgerError:
    return LedgerError(
        f"ledger {shown}: schema version {found} is newer than this pytest-promotion knows "
        f"({SCHEMA_VERSION}): upgrade pytest-promotion; nothing was written"
    )
