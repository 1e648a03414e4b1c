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
from .store import (
    COLUMNS,
    SCHEMA_VERSION,
    LeaseInfo,
    LedgerError,
    Store,
    newer_schema,
    row_to_record,
)

__all__ = ["SqliteStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT,
    digest TEXT,
    decision TEXT,
    actor TEXT,
    recorded_at TEXT NOT NULL,
    against INTEGER NOT NULL DEFAULT 0,
    summary TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_env ON records (environment, seq);
CREATE INDEX IF NOT EXISTS records_version ON records (version, environment);
CREATE TABLE IF NOT EXISTS leases (
    environment TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    actor TEXT NOT NULL,
    version TEXT,
    run_url TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqliteStore(Store):
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
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            found = row[0] if row else None
            if found is not None and found > SCHEMA_VERSION:
                raise newer_schema(found, self.shown)
            if found is None:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0])

    def now(self) -> str:
        return now_text()

    def append(self, records: Sequence[Record]) -> list[str]:
        rows = self.records_to_rows(records, now_text)
        written = []
        with self._write() as conn:
            for row in rows:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO records (id, kind, environment, version, digest, "
                    "decision, actor, recorded_at, against, summary, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                if cur.rowcount:
                    written.append(row[0])
        return written

    def query(
        self,
        *,
        environments: Sequence[str] | None = None,
        version: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
        full: bool = False,
    ) -> list[Record]:
        where: list[str] = []
        args: list[Any] = []
        if environments is not None:
            where.append(f"environment IN ({','.join('?' * len(environments))})")
            args += list(environments)
        if version is not None:
            where.append("version = ?")
            args.append(version)
        if kinds is not None:
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            args += list(kinds)
        body = "body" if full else "CASE WHEN kind = 'decision' THEN NULL ELSE body END"
        # constant column lists; every value is a bound parameter
        sql = f"SELECT {COLUMNS}, {body} FROM records"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            rows = self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self.shown}: cannot read: {_why(exc)}") from None
        return [row_to_record(r[:-1], r[-1]) for r in reversed(rows)]

    def get(self, prefix: str) -> list[Record]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.conn.execute(
            f"SELECT {COLUMNS}, body FROM records WHERE id LIKE ? ESCAPE '\\' LIMIT 5",  # noqa: S608
            (escaped + "%",),
        ).fetchall()
        return [row_to_record(r[:-1], r[-1]) for r in rows]

    def try_lease(self, info: LeaseInfo, ttl: float) -> LeaseInfo | None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT holder, actor, version, run_url, started_at, host, pid, expires "
                "FROM leases WHERE environment = ?",
                (info.environment,),
            ).fetchone()
            if row is not None and row[0] != info.holder:
                dead = row[5] == socket.gethostname() and not _alive(int(row[6]))
                if row[7] > time.time() and not dead:
                    return _lease(info.environment, row)
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
            conn.execute(
                "DELETE FROM leases WHERE environment = ? AND holder = ?",
                (info.environment, info.holder),
            )

    def close(self) -> None:
        self.conn.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def _lease(environment: str, row: Any) -> LeaseInfo:
    holder, actor, version, run_url, started_at, host, pid = row[:7]
    return LeaseInfo(environment, holder, actor, version, run_url, started_at, host, int(pid))
