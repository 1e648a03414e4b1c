"""The terminal summary: one row per gate, then the decision and the rollback command."""

from __future__ import annotations

from typing import Protocol

from ..decision import Decision, GateRecord
from ..untrusted import OneLineWriter
from . import summary_rows

__all__ = ["write_summary"]

MAX_CELL = 60
MAX_ROWS = 50


class Writer(Protocol):
    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...
    def write_line(self, line: str, **markup: bool) -> None: ...


def _cell(text: str) -> str:
    if "\n" in text or "  " in text:
        text = " ".join(text.split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def _rows(tr: Writer, gates: list[GateRecord], verbose: bool) -> None:
    """One row per gate; beyond MAX_ROWS (unless verbose) the passing ones are counted."""
    hidden = 0
    if not verbose and len(gates) > MAX_ROWS:
        # verdict_of(g) != "PASS", without a call a gate
        shown = [
            g
            for g in gates
            if g.outcome != "passed" or g.waiver is not None or g.crashed or g.xfail
        ]
        hidden = len(gates) - len(shown)
        gates = shown
    all_rows = summary_rows(gates)
    rows = [("gate", "measured", "threshold", "verdict")]
    rows += [(" ".join(a.split()), _cell(b), _cell(c), d) for a, b, c, d in all_rows]
    w0, w1, w2 = (max(len(r[i]) for r in rows) for i in range(3))
    if all_rows:  # no header over an empty table (nothing selected, or every row folded)
        head = f"{rows[0][0]:<{w0}}  {rows[0][1]:<{w1}}  {rows[0][2]:<{w2}}  verdict"
        tr.write_line(head, bold=True)
    for gate, measured, threshold, verdict in rows[1:]:
        line = f"{gate:<{w0}}  {measured:<{w1}}  {threshold:<{w2}}  {verdict}"
        tr.write_line(line, **{_ROW_COLOR.get(verdict, "red"): True})
    if hidden:
        tr.write_line(
            f"... and {hidden} more gates passed (-v shows every row; all are in the reports)"
        )


_ROW_COLOR = {"PASS": "green", "SKIP": "yellow", "WAIVED": "yellow"}


def _rollback(tr: Writer, decision: Decision) -> None:
    """The rollback command, or why there is none, and what running it gave."""
    if decision.rollback_command:
        tr.write_line(f"rollback command: {decision.rollback_command}", bold=True)
    else:
        why = next(
            (w for w in decision.warnings if w.startswith(NO_COMMAND_PREFIXES)),
            f"none configured for {decision.environment} "
            f"(set [environments.{decision.environment}] rollback)",
        )
        tr.write_line(f"rollback command: {why}", yellow=True)
    result = decision.rollback_result
    if result is not None:
        status = result.get("error") or f"exit {result.get('returncode')}"
        tr.write_line(f"rollback executed: {status}", bold=True)
        for line in (result.get("output") or "").splitlines()[-20:]:
            tr.write_line(f"  | {line}")


# Warnings that say why there is no rollback command (a first promotion, a template or a
# hook's answer that cannot be used): said in place of "none configured".
NO_COMMAND_PREFIXES = ("no rollback target:", "rollback command of ")


def write_summary(tr: Writer, decision: Decision, verbose: bool = False) -> None:
    """Write the promotion section to the terminal reporter.

    Up to MAX_ROWS gates get a row each; beyond that (unless verbose) passing gates are
    counted in one line, so that 2,000 green rows do not bury the red ones.
    """
    tr = OneLineWriter(tr)  # a message, a file name, tool output: control characters shown
    tr.write_sep("=", f"promotion: {decision.environment}")
    _rows(tr, decision.gates, verbose)
    for waiver in decision.waivers:
        tr.write_line(f"waiver: {waiver['gate']}: {waiver['reason']}", yellow=True)
    for warning in decision.warnings:
        tr.write_line(f"warning: {warning}", yellow=True)
    color = {"promote": "green", "block": "red", "rollback": "red"}[decision.decision]
    version = f" {decision.version}" if decision.version else ""
    tr.write_line(
        f"decision: {decision.decision.upper()}{version} -> {decision.environment}",
        bold=True,
        **{color: True},
    )
    for reason in decision.reasons:
        tr.write_line(f"  reason: {reason}", **{color: True})
    if not decision.promote:
        _rollback(tr, decision)
