"""Where a decision goes: the terminal, JUnit properties, a JSON file, GitHub Actions."""

from __future__ import annotations

from collections.abc import Iterable

from ..decision import GateRecord

__all__ = ["verdict_of"]

_VERDICTS = {"passed": "PASS", "error": "ERROR", "skipped": "SKIP"}


def verdict_of(gate: GateRecord) -> str:
    """The one-word verdict of a gate as every report shows it."""
    if gate.waiver is not None:
        return "WAIVED"
    if gate.crashed:
        return "CRASHED"
    if gate.xfail:
        return "XFAIL"
    if gate.outcome == "failed":
        return "ROLLBACK" if gate.rollback_trigger else "FAIL"
    return _VERDICTS.get(gate.outcome, "NOT RUN")


def summary_rows(gates: Iterable[GateRecord]) -> list[tuple[str, str, str, str]]:
    return [(g.name, g.measured or "-", g.threshold or "-", verdict_of(g)) for g in gates]
