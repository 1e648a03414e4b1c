"""Both stores from the one schema: a real SQLite file and a real PostgreSQL database get
the same tables, and the same records back for the same question."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pytest_promotion.ledger import Store, open_store
from pytest_promotion.ledger.model import Record
from pytest_promotion.ledger.schema import POSTGRES, SQLITE
from tests.ledger.conftest import fresh_database
from tests.services.conftest import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Store, dict[str, list[str]]]]:
    """An empty store, and its tables' columns as the database itself lists them."""
    if request.param == "sqlite":
        opened = open_store("sqlite:///ledger.sqlite3", tmp_path)
        with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
            columns = {
                table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
                for table in (SQLITE.records, SQLITE.leases, SQLITE.versions)
            }
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = fresh_database(server, sslrootcert=str(server.ca))
        opened = open_store(url, tmp_path)
        with psycopg.connect(url, connect_timeout=5) as conn:
            columns = {
                table: [
                    row[0]
                    for row in conn.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = %s ORDER BY ordinal_position",
                        (table,),
                    )
                ]
                for table in (POSTGRES.records, POSTGRES.leases, POSTGRES.versions)
            }
    yield opened, columns
    opened.close()


RECORD = [
    "seq", "id", "kind", "environment", "version", "digest", "decision", "actor",
    "recorded_at", "against", "summary", "body",
]  # fmt: skip
LEASE = ["environment", "holder", "actor", "version", "run_url", "host", "pid", "started_at"]


def test_both_stores_create_the_same_tables(store: tuple[Store, dict[str, list[str]]]) -> None:
    opened, columns = store
    records, leases, versions = columns.values()
    assert records == RECORD
    # SQLite's lease is a row with an expiry; PostgreSQL's an advisory lock
    assert leases == ([*LEASE, "expires"] if opened.shown.startswith("sqlite") else LEASE)
    assert versions == ["version"]
    assert opened.schema_version() == 1


def test_both_stores_answer_the_same_queries(store: tuple[Store, dict[str, list[str]]]) -> None:
    opened, _ = store
    records = [
        Record(kind="decision", environment="dev", version="v1", decision="promote", id="ab_1"),
        Record(kind="watch", environment="dev", version="v1", decision="running", id="abx1"),
        Record(kind="measurement", environment="dev", decision="failed", id="ab%2"),
        Record(kind="approval", environment="prod", version="v1", actor="alice", id="cd1"),
        Record(kind="invalidation", environment="*", version="v0", id="ef1"),
    ]
    assert opened.append(records) == [r.id for r in records]
    assert opened.append(records[:1]) == []  # a known id is skipped

    def ids(**question: object) -> list[str]:
        return [r.id for r in opened.query(**question)]  # type: ignore[arg-type]

    assert ids() == ["ab_1", "abx1", "ab%2", "cd1", "ef1"]
    assert ids(environments=["dev"]) == ["ab_1", "abx1", "ab%2"]
    assert ids(environments=["prod", "*"]) == ["cd1", "ef1"]
    assert ids(environments=[]) == []
    assert ids(version="v1", kinds=["decision", "approval"]) == ["ab_1", "cd1"]
    assert ids(exclude_kinds=["measurement"], limit=3) == ["abx1", "cd1", "ef1"]
    assert ids(exclude_kinds=["measurement", "watch"]) == ["ab_1", "cd1", "ef1"]
    assert ids(limit=2) == ["cd1", "ef1"]
    # an id prefix is taken literally: "_" and "%" are not wildcards
    assert [r.id for r in opened.get("ab_")] == ["ab_1"]
    assert [r.id for r in opened.get("ab%")] == ["ab%2"]
    assert sorted(r.id for r in opened.get("ab")) == ["ab%2", "ab_1", "abx1"]
    # a decision's body is read only when asked for
    assert opened.query(kinds=["decision"])[0].body == {"against": False, "summary": ""}
