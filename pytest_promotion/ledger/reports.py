"""The ledger in the run's reports beyond the terminal and JSON: JUnit suite properties
and a line in the GitHub step summary (the record id, the policy gates' evidence)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["add_junit_properties", "append_github_summary"]


def add_junit_properties(config: pytest.Config, extra: Mapping[str, Any]) -> None:
    """``promotion.ledger.record`` and ``promotion.ledger.evidence.<gate>`` (no-op without
    ``--junitxml``). Added on the controller, as reporting/junit.py does."""
    from _pytest.junitxml import xml_key  # no public handle on pytest's LogXML

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    if extra.get("record"):
        xml.add_global_property("promotion.ledger.record", str(extra["record"]))
    if extra.get("spooled"):
        xml.add_global_property("promotion.ledger.spooled", str(extra["spooled"]))
    for gate, evidence in (extra.get("evidence") or {}).items():
        xml.add_global_property(f"promotion.ledger.evidence.{gate}", str(evidence))


def append_github_summary(environ: Mapping[str, str], extra: Mapping[str, Any]) -> None:
    """One line under the decision's table in ``$GITHUB_STEP_SUMMARY``."""
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if environ.get("GITHUB_ACTIONS") != "true" or not summary:
        return
    if extra.get("record"):
        line = f"Ledger record `{extra['record']}` in `{extra.get('url')}`"
    elif extra.get("spooled"):
        line = f"Ledger record **not written**: spooled to `{extra['spooled']}`"
    else:
        return
    try:
        with Path(summary).open("a", encoding="utf-8") as f:
            f.write(f"\n{line}\n")
    except OSError:
        pass  # the summary is a courtesy; the JSON report and the record are the evidence
