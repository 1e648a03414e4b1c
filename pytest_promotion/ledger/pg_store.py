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
from .schema import POSTGRES, insert_records, migrate
from .store import (
    SCHEMA_VERSION,
    LeaseInfo,
    LedgerError,
    Store,
    lease_from_row,
    newer_schema,
)

__all__ = ["PostgresStore"]

LOCK_CLASS = 0x50524F4D  # "PROM": the advisory lock space of the ledger
_NOW = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


class PostgresStore(Store):
    dialect = POSTGRES

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
        from ..checks.postgres_connect import connect, tls_policy  # the postgres kind's rules

        try:
            tls = tls_policy(params, Target(env="ledger"), self.shown)
            self.tls_note = tls.note
            self.conn: Any = connect(
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
            # one migration at a time: concurrent first runs would race to create the tables
            self.conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_CLASS,))
            found = migrate(self.conn, POSTGRES, SCHEMA_VERSION)
            if found is not None and found > SCHEMA_VERSION:
                raise newer_schema(found, self.shown)

    def now(self) -> str:
        return str(self._run(lambda: self.conn.execute(f"SELECT {_NOW}").fetchone()[0]))

    def append(self, records: Sequence[Record]) -> list[str]:
        def write() -> list[str]:
            now = self.now()
            rows = self.records_to_rows(records, lambda: now)
            with self.conn.transaction():
                return insert_records(self.conn, POSTGRES, rows)

        return list(self._run(write))

    def fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = self._run(lambda: self.conn.execute(sql, args).fetchall())
        return rows

    def try_lease(self, info: LeaseInfo, ttl: float) -> LeaseInfo | None:
        def take() -> LeaseInfo | None:
            env = info.environment
            if env not in self._locked:
                got = self.conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, env)
                ).fetchone()[0]
                if not got:
                    row = self.conn.execute(POSTGRES.select_lease(), (env,)).fetchone()
                    if row is None:
                        return LeaseInfo(env, "?", "another run", None, None, "")
                    return lease_from_row(env, row)
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
            self.conn.execute(POSTGRES.delete_lease(), (env, info.holder))
            self.conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, env))

        self._locked.discard(env)
        self._run(give)

    def close(self) -> None:
        self.conn.close()


def _one(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
