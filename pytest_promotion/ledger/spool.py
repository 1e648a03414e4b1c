"""``.promotion/spool/``: the records a run could not write to its ledger, one JSON file
each, written atomically, until ``promotion ledger sync`` stores them."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import replace_file
from .model import Record
from .store import LedgerError, Store

__all__ = ["pending", "spool", "sync"]


def spool(directory: Path, record: Record, why: str) -> Path:
    """Write ``record`` to ``directory`` (atomically: a temporary file renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = record.to_json()
    data["spooled"] = {"why": why}
    target = directory / f"{record.id}.json"
    replace_file(target, json.dumps(data, indent=1, default=str))
    return target


def pending(directory: Path) -> list[tuple[Path, Record]]:
    """The spooled records, oldest file first; a file that does not parse is an error."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = Record.from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LedgerError(f"spool file {path}: not a ledger record ({exc})") from None
        record.body.setdefault("spooled", data.get("spooled"))
        found.append((path, record))
    return found


def sync(directory: Path, store: Store) -> tuple[int, int]:
    """Write every spooled record (a known id is skipped) and remove its file once the
    ledger has it: (written, already there)."""
    written = known = 0
    for path, record in pending(directory):
        if store.append([record]):
            written += 1
        else:
            known += 1
        path.unlink()
    return written, known
