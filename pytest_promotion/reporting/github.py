"""GitHub Actions: step outputs and a Markdown step summary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..decision import Decision
from ..untrusted import markdown
from . import summary_rows

__all__ = ["write_github"]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _md(text: str) -> str:
    return markdown(_one_line(text))  # HTML, Markdown and control characters escaped


def write_github(decision: Decision, environ: Mapping[str, str]) -> None:
    """Append outputs and the summary when running under GitHub Actions."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return
    output = environ.get("GITHUB_OUTPUT")
    if output:
        with Path(output).open("a", encoding="utf-8") as f:
            f.write(f"decision={decision.decision}\n")
            f.write(f"rollback-command={_one_line(decision.rollback_command or '')}\n")
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        lines = [
            f"### Promotion to `{decision.environment}`: **{decision.decision}**",
            "",
            "| gate | measured | threshold | verdict |",
            "|---|---|---|---|",
        ]
        lines += [f"| {' | '.join(_md(c) for c in row)} |" for row in summary_rows(decision.gates)]
        lines.append("")
        lines += [f"- {_md(r)}" for r in decision.reasons]
        lines += [f"- waiver: {_md(w['gate'])}: {_md(w['reason'])}" for w in decision.waivers]
        lines += [f"- warning: {_md(w)}" for w in decision.warnings]
        if not decision.promote and decision.rollback_command:
            lines += ["", "Rollback:", "", f"    {_one_line(decision.rollback_command)}"]
        with Path(summary).open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
