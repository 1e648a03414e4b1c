"""The ledger's tables, and the statements both stores run over them, in one place.

One description of each table is rendered per :class:`Dialect`; the few differences
between SQLite and PostgreSQL are fields of the dialect, named here and nowhere else:

- the tables' names: PostgreSQL's carry a ``promotion_`` prefix (the ledger may share a
  database with a team's other tables), SQLite's file is the ledger's own;
- the parameter marker (``?`` or ``%s``) and the type of the ``seq`` column;
- how a known id is skipped (``INSERT OR IGNORE`` or ``ON CONFLICT (id) DO NOTHING``);
- the lease table's ``expires`` column, SQLite only: there a lease is a row its holder
  renews, in PostgreSQL a session advisory lock (which dies with the connection).

A statement is built from constant text and column names only; every value is a bound
parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "LEASE_COLUMNS",
    "POSTGRES",
    "RECORD_COLUMNS",
    "SQLITE",
    "Dialect",
    "insert_records",
    "migrate",
]

# (column, type): ``SERIAL`` stands for the dialect's auto-incrementing key
_RECORDS = (
    ("seq", "SERIAL"),
    ("id", "TEXT NOT NULL UNIQUE"),
    ("kind", "TEXT NOT NULL"),
    ("environment", "TEXT NOT NULL"),
    ("version", "TEXT"),
    ("digest", "TEXT"),
    ("decision", "TEXT"),
    ("actor", "TEXT"),
    ("recorded_at", "TEXT NOT NULL"),
    ("against", "INTEGER NOT NULL DEFAULT 0"),
    ("summary", "TEXT NOT NULL DEFAULT ''"),
    ("body", "TEXT NOT NULL"),
)
# (index suffix, columns) on the records table
_INDEXES = (("env", "environment, seq"), ("version", "version, environment"))
_LEASES = (
    ("environment", "TEXT PRIMARY KEY"),
    ("holder", "TEXT NOT NULL"),
    ("actor", "TEXT NOT NULL"),
    ("version", "TEXT"),
    ("run_url", "TEXT"),
    ("host", "TEXT NOT NULL"),
    ("pid", "INTEGER NOT NULL"),
    ("started_at", "TEXT NOT NULL"),
)
_EXPIRES = ("expires", "REAL NOT NULL")

# what a query reads of a record, in :func:`.store.row_to_record`'s order (body apart)
RECORD_COLUMNS = (
    "id, seq, kind, environment, version, digest, decision, actor, recorded_at, against, summary"
)
# what is written of a record, in :meth:`.store.Store.records_to_rows`'s order
_WRITTEN = tuple(name for name, _ in _RECORDS if name != "seq")
# what a lease read returns, in :func:`.store.lease_from_row`'s order
LEASE_COLUMNS = "holder, actor, version, run_url, started_at, host, pid"


class Connection(Protocol):
    """What both ``sqlite3`` and ``psycopg`` connections offer."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...


@dataclass(frozen=True)
class Dialect:
    """How one database spells the ledger's statements."""

    prefix: str  # of every table's name
    param: str  # the parameter marker
    serial: str  # the seq column's type
    insert: str  # how an INSERT that skips a known id begins ...
    on_conflict: str  # ... and ends
    lease_expires: bool  # whether the lease table has an expiry column

    @property
    def records(self) -> str:
        return f"{self.prefix}records"

    @property
    def leases(self) -> str:
        return f"{self.prefix}leases"

    @property
    def versions(self) -> str:
        return f"{self.prefix}schema_version"

    def schema(self) -> list[str]:
        """The statements that create the tables and indexes (each ``IF NOT EXISTS``)."""
        records = [(n, self.serial if t == "SERIAL" else t) for n, t in _RECORDS]
        leases = [*_LEASES, _EXPIRES] if self.lease_expires else list(_LEASES)
        return [
            _create(self.records, records),
            *(
                f"CREATE INDEX IF NOT EXISTS {self.records}_{suffix} ON {self.records} ({cols})"
                for suffix, cols in _INDEXES
            ),
            _create(self.leases, leases),
        ]

    def marks(self, n: int) -> str:
        return ", ".join([self.param] * n)

    def insert_record(self) -> str:
        return (
            f"{self.insert} {self.records} ({', '.join(_WRITTEN)}) "
            f"VALUES ({self.marks(len(_WRITTEN))}){self.on_conflict}"
        )

    def select_records(
        self,
        *,
        environments: Sequence[str] | None,
        version: str | None,
        kinds: Sequence[str] | None,
        exclude_kinds: Sequence[str] | None = None,
        limit: int | None,
        full: bool,
    ) -> tuple[str, list[Any]]:
        """The newest records first (the caller reverses them), with their arguments.
        Without ``full`` a decision's body is not read (``NULL``)."""
        where: list[str] = []
        args: list[Any] = []
        for column, values, op in (
            ("environment", environments, "IN"),
            ("version", None if version is None else [version], "IN"),
            ("kind", kinds, "IN"),
            ("kind", exclude_kinds, "NOT IN"),
        ):
            if values is not None and (values or op == "IN"):
                where.append(self._match(column, len(values), op))
                args += list(values)
        body = "body" if full else "CASE WHEN kind = 'decision' THEN NULL ELSE body END"
        sql = f"SELECT {RECORD_COLUMNS}, {body} FROM {self.records}"  # noqa: S608
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return sql, args

    def _match(self, column: str, n: int, op: str) -> str:
        if n == 0:
            return "1 = 0"  # IN (): nothing, which PostgreSQL cannot spell
        if n == 1:  # equality for one value: both planners then walk the index
            return f"{column} {'=' if op == 'IN' else '<>'} {self.param}"
        return f"{column} {op} ({self.marks(n)})"

    def select_by_prefix(self, prefix: str) -> tuple[str, list[Any]]:
        """At most five records whose id starts with ``prefix`` (its ``%`` and ``_`` taken
        literally), bodies included."""
        escaped = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        sql = (
            f"SELECT {RECORD_COLUMNS}, body FROM {self.records} "  # noqa: S608
            f"WHERE id LIKE {self.param} ESCAPE '!' LIMIT 5"
        )
        return sql, [escaped + "%"]

    def select_lease(self) -> str:
        return f"SELECT {LEASE_COLUMNS} FROM {self.leases} WHERE environment = {self.param}"  # noqa: S608

    def delete_lease(self) -> str:
        return (
            f"DELETE FROM {self.leases} "  # noqa: S608
            f"WHERE environment = {self.param} AND holder = {self.param}"
        )


def _create(table: str, columns: Sequence[tuple[str, str]]) -> str:
    lines = ",\n".join(f"    {name} {kind}" for name, kind in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n{lines}\n)"


SQLITE = Dialect(
    prefix="",
    param="?",
    serial="INTEGER PRIMARY KEY AUTOINCREMENT",
    insert="INSERT OR IGNORE INTO",
    on_conflict="",
    lease_expires=True,
)
POSTGRES = Dialect(
    prefix="promotion_",
    param="%s",
    serial="BIGSERIAL PRIMARY KEY",
    insert="INSERT INTO",
    on_conflict=" ON CONFLICT (id) DO NOTHING",
    lease_expires=False,
)


def migrate(conn: Connection, dialect: Dialect, version: int) -> int | None:
    """Create the tables when the ledger has none, inside the caller's transaction. The
    schema version found before (None: a new ledger); the caller refuses a newer one."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {dialect.versions} (version INTEGER NOT NULL)")
    row = conn.execute(f"SELECT max(version) FROM {dialect.versions}").fetchone()  # noqa: S608
    found: int | None = row[0] if row else None
    if found is None:
        for statement in dialect.schema():
            conn.execute(statement)
        conn.execute(f"INSERT INTO {dialect.versions} VALUES ({dialect.param})", (version,))  # noqa: S608
    return found


def insert_records(
    conn: Connection, dialect: Dialect, rows: Sequence[tuple[Any, ...]]
) -> list[str]:
    """Insert ``rows`` (:meth:`.store.Store.records_to_rows`); the ids newly written."""
    sql = dialect.insert_record()
    written = []
    for row in rows:
        if conn.execute(sql, row).rowcount:
            written.append(row[0])
    return written
