"""Whether a gate run needs the ledger at all, answered before the ledger is imported: a
run with ``ledger = false``, no policy gate and no watch pays nothing for it (the record
model and the run context cost every run ~15 M instructions to import)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LEDGER_VAR", "POLICY_KINDS", "WORKER_KEY", "is_off", "report_when_off", "setting"]

LEDGER_VAR = "PROMOTION_LEDGER"
# What the controller hands an xdist worker: the run's ledger context, as JSON.
WORKER_KEY = "promotion_ledger"
# the check kinds whose gates judge the ledger, not the target: they block, never roll back
POLICY_KINDS = (
    "requires_previous",
    "approval",
    "approvals",
    "same_artifact",
    "version_pattern",
    "no_downgrade",
    "rollback_ready",
)
_OFF = ("false", "off", "none", "0")


def setting(
    option: str | None, options: Mapping[str, Any], environ: Mapping[str, str], where: str
) -> tuple[Any, str]:
    """(the ledger setting in force, where it came from): ``--promotion-ledger`` >
    ``PROMOTION_LEDGER`` > ``[promotion] ledger`` > None (the default ledger)."""
    if option:
        return option, "--promotion-ledger"
    if environ.get(LEDGER_VAR):
        return environ[LEDGER_VAR], LEDGER_VAR
    return options.get("ledger"), f"{where} [promotion] key 'ledger'"


def is_off(value: object) -> bool:
    """``false`` (TOML) or one of the words for it."""
    return value is False or (isinstance(value, str) and value.strip().lower() in _OFF)


def report_when_off(version_option: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The JSON report's ``ledger`` section of a run without the ledger's plugin (the ledger
    is off): what the plugin itself would say (no git describe without a ledger)."""
    if version_option:
        source: str | None = "--promotion-version"
    elif environ.get("PROMOTION_VERSION"):
        source = "PROMOTION_VERSION"
    else:
        source = None
    return {"url": "(off)", "record": None, "spooled": None, "version_source": source,
            "evidence": {}}  # fmt: skip
