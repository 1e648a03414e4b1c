"""The terminal summary: one row per gate, then the decision and the rollback command."""

from __future__ import annotations

from typing import Protocol

from ..decision import Decision
from . import summary_rows

__all__ = ["write_summary"]

MAX_CELL = 60


class Writer(Protocol):
    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...
    def write_line(self, line: str, **markup: bool) -> None: ...


def _cell(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def write_summary(tr: Writer, decision: Decision) -> None:
    """Write the promotion section to the terminal reporter."""
    tr.write_sep("=", f"promotion: {decision.environment}")
    rows = [("gate", "measured", "threshold", "verdict")]
    rows += [tuple(_cell(c) for c in row) for row in summary_rows(decision)]  # type: ignore[misc]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for n, row in enumerate(rows):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        verdict = row[3]
        tr.write_line(
            line,
            bold=n == 0,
            red=n > 0 and verdict in ("FAIL", "ROLLBACK", "ERROR", "CRASHED", "NOT RUN", "XFAIL"),
            yellow=n > 0 and verdict in ("SKIP", "WAIVED"),
            green=n > 0 and verdict == "PASS",
        )
    for waiver in decision.waivers:
        tr.write_line(f"waiver: {waiver['gate']}: {waiver['reason']}", yellow=True)
    for warning in decision.warnings:
        tr.write_line(f"warning: {warning}", yellow=True)
    color = {"promote": "green", "block": "red", "rollback": "red"}[decision.decision]
    version = f" {decision.version}" if decision.version else ""
    tr.write_line(f"decision: {decision.decision.upper()}{version} -> {decision.environment}", bold=True, **{color: True})
    for reason in decision.reasons:
        tr.write_line(f"  reason: {reason}", **{color: True})
    if not decision.promote:
        if decision.rollback_command:
            tr.write_line(f"rollback command: {decision.rollback_command}", bold=True)
        else:
            tr.write_line(
                f"rollback command: none configured for {decision.environment} "
                f"(set [environments.{decision.environment}] rollback)",
                yellow=True,
            )
        result = decision.rollback_result
        if result is not None:
            status = result.get("error") or f"exit {result.get('returncode')}"
            tr.write_line(f"rollback executed: {status}", bold=True)
            for line in (result.get("output") or "").splitlines()[-20:]:
                tr.write_line(f"  | {line}")
