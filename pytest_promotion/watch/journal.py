"""Where the watch writes: the ledger, one record per measurement as it happens (so a
24-hour window keeps nothing in memory, and an interrupt loses nothing measured), then
the watch's end, its rollback and its hold. Without a ledger, nowhere, and every report
says that no hold could be recorded.

Records (kinds ``measurement``, ``watch``, ``rollback``, ``hold``) are appended like every
other; a measurement record has no version column (``body.version`` has it) so that the
policy queries by version never read thousands of them. A record the ledger cannot take is
spooled to ``.promotion/spool/`` (``promotion ledger sync`` writes it later).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..ledger import LedgerError, Record, Store
from ..ledger.model import now_text
from ..ledger.spool import spool
from ..redact import redact

__all__ = ["HOLD", "Journal", "LedgerJournal", "active_hold", "release_hold"]

HOLD = "hold"


def active_hold(store: Store, env: str) -> Record | None:
    """The hold on ``env``, when the newest hold record puts one on."""
    last = store.query(environments=[env], kinds=[HOLD], limit=1, full=True)
    return last[0] if last and last[0].decision == "on" else None


def release_hold(store: Store, env: str, hold: Record, reason: str, actor: str,
                 actor_source: str) -> Record:  # fmt: skip
    record = Record(kind=HOLD, environment=env, version=hold.version, decision="released",
                    actor=actor, body={"reason": reason, "hold": hold.id,
                                       "actor_source": actor_source})  # fmt: skip
    store.append([record])
    return record


class Journal:
    """No ledger: the watch still runs (and rolls back once), nothing is recorded."""

    shown = "(no ledger)"
    can_hold = False
    why_not = "the ledger is off (ledger = false)"

    def __init__(self, env: str, version: str | None, digest: str | None, actor: str) -> None:
        self.env, self.version, self.digest, self.actor = env, version, digest, actor
        self.warnings: list[str] = []
        self.watch_id: str | None = None

    def new(self, kind: str, decision: str | None, body: dict[str, Any],
            versioned: bool = True) -> Record:  # fmt: skip
        """A record of this watch (written by :meth:`finish`)."""
        return Record(kind=kind, environment=self.env,
                      version=self.version if versioned else None, digest=self.digest,
                      decision=decision, actor=self.actor,
                      body={**body, "version": self.version, "watch": self.watch_id})  # fmt: skip

    def start(self, body: dict[str, Any]) -> None:
        return None

    def measurement(self, body: dict[str, Any], state: str) -> str:
        return now_text()

    def hold(self) -> Record | None:
        return None

    def finish(self, records: list[Record]) -> list[str]:
        return []


class LedgerJournal(Journal):
    can_hold = True
    why_not = ""

    def __init__(self, store: Store | None, env: str, version: str | None, digest: str | None,
                 actor: str, base: Path, secrets: tuple[str, ...] = ()) -> None:  # fmt: skip
        super().__init__(env, version, digest, actor)
        self.store, self.base, self.secrets = store, base, secrets
        self.shown = store.shown if store is not None else "(unreachable ledger)"
        self.broken: str | None = None  # the ledger failed: spool the rest without asking
        self.spooled = 0

    @classmethod
    def unreachable(cls, why: str, env: str, version: str | None, digest: str | None,
                    actor: str, base: Path, secrets: tuple[str, ...] = ()) -> LedgerJournal:  # fmt: skip
        """A ledger that cannot be opened: every record is spooled (nothing measured is
        lost), and no hold can be put on the environment."""
        journal = cls(None, env, version, digest, actor, base, secrets)
        journal.broken = redact(why, secrets)
        journal.can_hold = False
        journal.why_not = f"the ledger cannot be reached ({journal.broken})"
        return journal

    def _write(self, record: Record, retry: bool = False) -> None:
        if self.store is not None and (self.broken is None or retry):
            try:
                self.store.append([record])
                return
            except LedgerError as exc:
                self.broken = redact(str(exc), self.secrets)
        record.recorded_at = record.recorded_at or now_text()
        record.body["clock"] = "local: spooled, the ledger could not be reached"
        try:
            spool(self.base / ".promotion" / "spool", record, self.broken or "")
            self.spooled += 1
        except OSError as exc:
            self.warnings.append(f"a watch record was lost: cannot spool it ({exc.strerror})")

    def start(self, body: dict[str, Any]) -> None:
        record = self.new("watch", "running", body)
        self.watch_id = record.id
        record.body["watch"] = record.id
        self._write(record)

    def measurement(self, body: dict[str, Any], state: str) -> str:
        at = now_text()
        self._write(self.new("measurement", state, {**body, "at": at}, versioned=False))
        return at

    def hold(self) -> Record | None:
        if self.store is None:
            return None
        try:
            return active_hold(self.store, self.env)
        except LedgerError as exc:
            self.warnings.append(f"the hold on {self.env} could not be read ({exc})")
            return None

    def finish(self, records: list[Record]) -> list[str]:
        """Write the end records (retrying a ledger that failed earlier); warnings."""
        for record in records:
            self._write(record, retry=True)
        if self.spooled:
            self.warnings.append(
                f"{self.spooled} watch record(s) could not be written to {self.shown} "
                f"({self.broken}); spooled to {self.base / '.promotion' / 'spool'}: run "
                f"`promotion ledger sync` when the ledger is back"
            )
        return self.warnings
