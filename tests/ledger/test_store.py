"""The SQLite store itself: ids written once, the schema version, leases that expire,
concurrent writers without "database is locked", the window of recent records."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from pytest_promotion.ledger import LedgerError, open_store
from pytest_promotion.ledger.model import Record
from pytest_promotion.ledger.queries import WINDOW, last_known_good_in
from pytest_promotion.ledger.store import LeaseInfo

URL = "sqlite:///.promotion/ledger.sqlite3"


def test_a_record_id_is_written_once(tmp_path: Path) -> None:
    store = open_store(URL, tmp_path)
    record = Record(kind="decision", environment="dev", version="v1", decision="promote")
    assert store.append([record]) == [record.id]
    assert store.append([record]) == []
    assert [r.id for r in store.query()] == [record.id]
    assert (tmp_path / ".promotion" / "ledger.sqlite3").is_file()
    journal = (
        sqlite3.connect(tmp_path / ".promotion" / "ledger.sqlite3")
        .execute("PRAGMA journal_mode")
        .fetchone()
    )
    assert journal == ("wal",)


def test_a_newer_schema_is_refused_and_nothing_written(tmp_path: Path) -> None:
    open_store(URL, tmp_path).close()
    with sqlite3.connect(tmp_path / ".promotion" / "ledger.sqlite3") as conn:
        conn.execute("INSERT INTO schema_version VALUES (2)")
    with pytest.raises(
        LedgerError, match=r"schema version 2 is newer than this pytest-promotion knows \(1\)"
    ):
        open_store(URL, tmp_path)


def test_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(
        LedgerError, match=r"^ledger sqlite:///.*/file/x/ledger.sqlite3: cannot open: "
    ):
        open_store(f"sqlite:///{blocker}/x/ledger.sqlite3", tmp_path)


def test_an_expired_lease_of_another_host_can_be_taken(tmp_path: Path) -> None:
    store = open_store(URL, tmp_path)
    theirs = LeaseInfo("prod", "them", "alice", "v1", None, "", "other-host", 1)
    assert store.try_lease(theirs, ttl=60) is None
    mine = LeaseInfo.mine("prod", "me", "bob", "v2", None)
    held = store.try_lease(mine, ttl=60)
    assert held is not None and held.actor == "alice"
    with sqlite3.connect(tmp_path / ".promotion" / "ledger.sqlite3") as conn:
        conn.execute("UPDATE leases SET expires = ?", (time.time() - 1,))
    assert store.try_lease(mine, ttl=60) is None


def test_concurrent_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    open_store(URL, tmp_path).close()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            store = open_store(URL, tmp_path)
            for i in range(50):
                store.append(
                    [
                        Record(
                            kind="decision",
                            environment=f"e{n}",
                            version=f"v{i}",
                            decision="promote",
                        )
                    ]
                )
            store.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(open_store(URL, tmp_path).query()) == 400


def test_the_last_known_good_version_beyond_the_window(tmp_path: Path) -> None:
    store = open_store(URL, tmp_path)
    store.append(
        [Record(kind="decision", environment="prod", version="v1.0.0", decision="promote")]
    )
    store.append([Record(kind="decision", environment="prod", version="v2", decision="block",
                         body={"reasons": ["lease"]}) for _ in range(WINDOW + 10)])  # fmt: skip
    good = last_known_good_in(store, "prod")
    assert good is not None and good.version == "v1.0.0"
