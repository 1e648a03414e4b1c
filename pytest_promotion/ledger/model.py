"""A ledger record: one decision, approval, reject, revoke, invalidation, rollback or hold.

Records are appended, never edited: a rollback of a promote, or a revoked approval, is a
new record that refers to the earlier ones. The columns a query filters on are fields of
:class:`Record`; everything else (reasons, gates, evidence, times) is in ``body``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .switch import POLICY_KINDS

__all__ = [
    "KINDS",
    "POLICY_KINDS",
    "Record",
    "format_time",
    "hours",
    "now_text",
    "parse_time",
    "short_time",
]

# decision: a gate run; rollback: a rollback command run (by the plugin or by hand);
# approval / reject / revoke / invalidation: `promotion approve|reject|revoke|invalidate`.
KINDS = ("decision", "approval", "reject", "revoke", "invalidation", "rollback", "hold")


def format_time(moment: datetime) -> str:
    """UTC, microseconds, ``Z``: sorts as text, the same in SQLite and PostgreSQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def now_text() -> str:
    return format_time(datetime.now(UTC))


def short_time(text: str | None) -> str:
    """``2026-11-28 14:02`` for tables and messages."""
    return text[:16].replace("T", " ") if text else "-"


def hours(delta: timedelta) -> str:
    """``20 h``, ``45 min``, ``3.5 d``: a duration a release manager reads at a glance."""
    seconds = delta.total_seconds()
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} d".replace(".0 d", " d")


@dataclass
class Record:
    """One entry of the ledger."""

    kind: str
    environment: str
    version: str | None = None
    digest: str | None = None
    decision: str | None = None
    actor: str | None = None
    # when the ledger stored it (its own clock); None until appended
    recorded_at: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seq: int = 0  # the store's order of insertion; 0 until read back

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "environment": self.environment,
            "version": self.version,
            "digest": self.digest,
            "decision": self.decision,
            "actor": self.actor,
            "recorded_at": self.recorded_at,
            "body": self.body,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        return cls(
            kind=str(data["kind"]),
            environment=str(data["environment"]),
            version=data.get("version"),
            digest=data.get("digest"),
            decision=data.get("decision"),
            actor=data.get("actor"),
            recorded_at=data.get("recorded_at"),
            body=dict(data.get("body") or {}),
            id=str(data["id"]),
        )

    @property
    def when(self) -> datetime:
        return parse_time(self.recorded_at or now_text())

    @property
    def label(self) -> str:
        return self.version or "(no version)"
