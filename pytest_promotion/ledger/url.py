"""The ledger's URL and its error, apart from the store (``store`` imports the schema and
the record model: a run with ``ledger = false`` reads the URL setting and needs neither)."""

from __future__ import annotations

from pathlib import Path

from ..redact import redact_url

__all__ = ["DEFAULT_URL", "LedgerError", "resolve_url"]

DEFAULT_URL = "sqlite:///.promotion/ledger.sqlite3"


class LedgerError(Exception):
    """The ledger cannot be opened, read or written: one line naming it and why."""


def resolve_url(value: str, base: Path) -> tuple[str, Path | None]:
    """(the URL, the SQLite file it names, or None for PostgreSQL)."""
    if value.startswith("sqlite:///"):
        raw = value.removeprefix("sqlite:///")
        if not raw:
            raise LedgerError(f"ledger {value}: expected sqlite:///PATH, found no path")
        path = Path(raw)
        return value, path if path.is_absolute() else base / path
    if value.startswith(("postgresql://", "postgres://")):
        return value, None
    raise LedgerError(
        f"ledger {redact_url(value)!r}: expected sqlite:///PATH or postgresql://..., or false"
    )
