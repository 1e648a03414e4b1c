"""A promote whose watch is still running, as ``requires_previous`` downstream sees it.

A watch that has not ended may still roll its version back: by default a downstream
``requires_previous`` does not count that promote (``allow_watching = true`` does). A
watch whose window (plus 10 minutes) is long over without an end record was abandoned (a
killed process): it no longer hides the promote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from ..ledger.model import Record, parse_time, short_time
from ..ledger.policy import Verdict

__all__ = ["GRACE", "while_watched"]

GRACE = 600.0


def _running(records: Sequence[Record], now: datetime) -> list[Record]:
    ended = {r.body.get("watch") for r in records if r.kind == "watch" and r.decision != "running"}
    found = []
    for r in records:
        if r.kind != "watch" or r.decision != "running" or r.id in ended:
            continue
        window = float(r.body.get("settings", {}).get("duration_s", 0)) + GRACE
        if r.recorded_at and parse_time(r.recorded_at) + timedelta(seconds=window) > now:
            found.append(r)
    return found


def while_watched(verdict: Verdict, records: Sequence[Record], now: datetime) -> Verdict:
    """A passing ``requires_previous`` verdict fails while a watch of that version still
    runs upstream (it may still roll the version back)."""
    if not verdict.passed:
        return verdict
    running = _running(records, now)
    if not running:
        return verdict
    w = running[-1]
    return replace(verdict, passed=False, message=(
        f"{w.version} is promoted in {w.environment}, but its watch there is still running "
        f"(since {short_time(w.recorded_at)}, record {w.id[:12]}): it may still roll back; "
        f"allow_watching = true counts a promote under watch"
    ))  # fmt: skip
