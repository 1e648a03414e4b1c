"""The PostgreSQL ledger (psycopg 3), shared by every CI runner of a team.

TLS as the ``postgres`` check kind does it (the same code): the server's certificate is
verified (``sslmode=verify-full``) against the DSN's ``sslrootcert``, else the system
store; ``sslmode=disable`` connects in plaintext and the reports say so. The lease of an
environment is a session advisory lock held on the run's connection: a run that dies
loses its connection, and the database releases the lock with it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..checks.base import CheckFailed, Target
from ..redact import redact, redact_url
from .model import Record
from .store import (
    COLUMNS,
    SCHEMA_VERSION,
    LeaseInfo,
    LedgerError,
    Store,
    newer_schema,
    row_to_record,
)

__all__ = ["PostgresStore"]

LOCK_CLASS = 0x50524F4D  # "PROM": the advisory lock space of the ledger
_NOW = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
SCHEMA = """
CREATE TABLE IF NOT EXISTS promotion_records (
    seq BIGSERIAL PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS promotion_records_env ON promotion_records (environment, seq);
CREATE INDEX IF NOT EXISTS promotion_records_version ON promotion_records (version, environment);
CREATE TABLE IF NOT EXISTS promotion_leases (
    environment TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    actor TEXT NOT NULL,
    version TEXT,
    run_url TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL
)
"""


class PostgresStore(Store):
    def __init__(self, url: str, *, timeout: float = 10.0, secrets: Sequence[str] = ()) -> None:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise LedgerError(
                "ledger postgresql://...: psycopg is not installed: "
                "pip install 'pytest-promotion[postgres]'"
            ) from None
        self.psycopg = psycopg
        self.shown = redact_url(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise LedgerError(
                f"ledger {self.shown}: the URL does not parse ({_one(exc)})"
            ) from None
        self.secrets = (*secrets, str(params.get("password") or ""))
        self.shown = redact(self.shown, self.secrets)
        from ..checks.postgres import _connect, _tls_policy  # the postgres kind's TLS rules

        try:
            tls = _tls_policy(params, Target(env="ledger"), self.shown)
            self.tls_note = tls.note
            self.conn: Any = _connect(
                psycopg, params, tls, time.monotonic() + timeout, timeout, self.shown
            )
        except CheckFailed as exc:
            raise LedgerError(
                redact("ledger " + exc.message.removeprefix("postgres "), self.secrets)
            ) from None
        self.conn.autocommit = True
        self._locked: set[str] = set()
        self._run(self._migrate)

    def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self.psycopg.Error as exc:
            raise LedgerError(redact(f"ledger {self.shown}: {_one(exc)}", self.secrets)) from None

    def _migrate(self) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_CLASS,))
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS promotion_schema_version (version INTEGER NOT NULL)"
            )
            found = self.conn.execute(
                "SELECT max(version) FROM promotion_schema_version"
            ).fetchone()[0]
            if found is not None and found > SCHEMA_VERSION:
                raise newer_schema(found, self.shown)
            if found is None:
                for statement in SCHEMA.split(";"):
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO promotion_schema_version VALUES (%s)", (SCHEMA_VERSION,)
                )

    def schema_version(self) -> int:
        return int(self._run(lambda: self.conn.execute(
            "SELECT max(version) FROM promotion_schema_version").fetchone()[0]))  # fmt: skip

    def now(self) -> str:
        return str(self._run(lambda: self.conn.execute(f"SELECT {_NOW}").fetchone()[0]))

    def append(self, records: Sequence[Record]) -> list[str]:
        def write() -> list[str]:
            now = self.now()
            written = []
            with self.conn.transaction():
                for row in self.records_to_rows(records, lambda: now):
                    cur = self.conn.execute(
                        "INSERT INTO promotion_records (id, kind, environment, version, digest, "
                        "decision, actor, recorded_at, against, summary, body) VALUES "
                        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                        row,
                    )
                    if cur.rowcount:
                        written.append(row[0])
            return written

        return list(self._run(write))

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
        if environments is not None:  # equality for one: the planner then walks the index
            where.append("environment = %s" if len(environments) == 1 else "environment = ANY(%s)")
            args.append(environments[0] if len(environments) == 1 else list(environments))
        if version is not None:
            where.append("version = %s")
            args.append(version)
        if kinds is not None:
            where.append("kind = %s" if len(kinds) == 1 else "kind = ANY(%s)")
            args.append(kinds[0] if len(kinds) == 1 else list(kinds))
        body = "body" if full else "CASE WHEN kind = 'decision' THEN NULL ELSE body END"
        # constant column lists; every value is a bound parameter
        sql = f"SELECT {COLUMNS}, {body} FROM promotion_records"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._run(lambda: self.conn.execute(sql, args).fetchall())
        return [row_to_record(r[:-1], r[-1]) for r in reversed(rows)]

    def get(self, prefix: str) -> list[Record]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._run(lambda: self.conn.execute(
            f"SELECT {COLUMNS}, body FROM promotion_records WHERE id LIKE %s LIMIT 5",  # noqa: S608
            (escaped + "%",)).fetchall())  # fmt: skip
        return [row_to_record(r[:-1], r[-1]) for r in rows]

    def try_lease(self, info: LeaseInfo, ttl: float) -> LeaseInfo | None:
        def take() -> LeaseInfo | None:
            env = info.environment
            if env not in self._locked:
                got = self.conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, env)
                ).fetchone()[0]
                if not got:
                    row = self.conn.execute(
                        "SELECT holder, actor, version, run_url, started_at, host, pid "
                        "FROM promotion_leases WHERE environment = %s",
                        (env,),
                    ).fetchone()
                    if row is None:
                        return LeaseInfo(env, "?", "another run", None, None, "")
                    return _lease(env, row)
                self._locked.add(env)
                info.started_at = self.now()
                self.conn.execute(
                    "INSERT INTO promotion_leases VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (environment) DO UPDATE SET holder = EXCLUDED.holder, "
                    "actor = EXCLUDED.actor, version = EXCLUDED.version, "
                    "run_url = EXCLUDED.run_url, host = EXCLUDED.host, pid = EXCLUDED.pid, "
                    "started_at = EXCLUDED.started_at",
                    (env, info.holder, info.actor, info.version, info.run_url, info.host,
                     info.pid, info.started_at),
                )  # fmt: skip
            return None

        result: LeaseInfo | None = self._run(take)
        return result

    def release(self, info: LeaseInfo) -> None:
        env = info.environment
        if env not in self._locked:
            return

        def give() -> None:
            self.conn.execute(
                "DELETE FROM promotion_leases WHERE environment = %s AND holder = %s",
                (env, info.holder),
            )
            self.conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, env))

        self._locked.discard(env)
        self._run(give)

    def close(self) -> None:
        self.conn.close()


def _one(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]


def _lease(environment: str, row: Any) -> LeaseInfo:
    holder, actor, version, run_url, started_at, host, pid = row[:7]
    return LeaseInfo(environment, holder, actor, version, run_url, started_at, host, int(pid))
