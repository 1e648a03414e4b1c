"""Where a decision goes: the terminal, JUnit properties, a JSON file, GitHub Actions."""

from __future__ import annotations

from ..decision import Decision, GateRecord

__all__ = ["verdict_of"]


def verdict_of(gate: GateRecord) -> str:
    """The one-word verdict of a gate as every report shows it."""
    if gate.waiver is not None:
        return "WAIVED"
    if gate.crashed:
        return "CRASHED"
    if gate.xfail:
        return "XFAIL"
    return {
        "passed": "PASS",
        "failed": "ROLLBACK" if gate.rollback_trigger else "FAIL",
        "error": "ERROR",
        "skipped": "SKIP",
    }.get(gate.outcome, "NOT RUN")


def summary_rows(decision: Decision) -> list[tuple[str, str, str, str]]:
    return [(g.name, g.measured or "-", g.threshold or "-", verdict_of(g)) for g in decision.gates]
