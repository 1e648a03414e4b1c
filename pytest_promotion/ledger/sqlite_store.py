"""The SQLite ledger: one file, WAL, a busy timeout, ``BEGIN IMMEDIATE`` for every write.

Concurrent CI jobs on one machine (or one shared volume) wait for each other's write
instead of failing with "database is locked". A lease is a row with an expiry that its
holder renews; a holder that died on this host (its pid is gone) loses it at once.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .model import Record, now_text
from .schema import LEASE_COLUMNS, SQLITE, insert_records, migrate
from .store import (
    SCHEMA_VERSION,
    LeaseInfo,
    LedgerError,
    Store,
    lease_from_row,
    newer_schema,
)

__all__ = ["SqliteStore"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqliteStore(Store):
    dialect = SQLITE

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self.path = path
        self.shown = f"sqlite:///{path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"ledger {self.shown}: cannot open: {_why(exc)}") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self.shown}: cannot write: {_why(exc)}") from None

    def _migrate(self) -> None:
        with self._write() as conn:
            found = migrate(conn, SQLITE, SCHEMA_VERSION)
            if found is not None and found > SCHEMA_VERSION:
                raise newer_schema(found, self.shown)

    def now(self) -> str:
        return now_text()

    def append(self, records: Sequence[Record]) -> list[str]:
        rows = self.records_to_rows(records, now_text)
        with self._write() as conn:
            return insert_records(conn, SQLITE, rows)

    def fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self.shown}: cannot read: {_why(exc)}") from None

    def try_lease(self, info: LeaseInfo, ttl: float) -> LeaseInfo | None:
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {LEASE_COLUMNS}, expires FROM leases WHERE environment = ?",  # noqa: S608
                (info.environment,),
            ).fetchone()
            if row is not None and row[0] != info.holder:
                dead = row[5] == socket.gethostname() and not _alive(int(row[6]))
                if row[7] > time.time() and not dead:
                    return lease_from_row(info.environment, row)
            started = row[4] if row is not None and row[0] == info.holder else now_text()
            info.started_at = started
            conn.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (info.environment, info.holder, info.actor, info.version, info.run_url,
                 info.host, info.pid, started, time.time() + ttl),
            )  # fmt: skip
        return None

    def release(self, info: LeaseInfo) -> None:
        with self._write() as conn:
            conn.execute(SQLITE.delete_lease(), (info.environment, info.holder))

    def close(self) -> None:
        self.conn.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__
