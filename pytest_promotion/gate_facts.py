"""What collection declares of each gate (its name, its trigger) and the per-case
properties its reports carry; the ``gate`` fixture's recorder (gate.py) starts from it.
Apart from the recorder, which a run loads only where a test asks for one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

__all__ = ["PROP", "case_properties", "declare_gate", "meta_key"]

PROP = "promotion."
# (name, rollback trigger, set by the gate marker, set by a declarative check)
meta_key = pytest.StashKey[tuple[str, bool, bool, bool]]()


_GATE_KEY = PROP + "gate"
_BLOCK = (PROP + "trigger", "block")
_ROLLBACK = (PROP + "trigger", "rollback")


def declare_gate(
    item: pytest.Item,
    nodeid: str,
    gate: Mapping[str, Any] | None,
    check_trigger: bool | None = None,
) -> None:
    """Mark a selected item as a gate, cheaply (this runs once per test at collection):
    the properties every report carries, and what a recorder starts from if one is asked.
    ``gate`` is the keyword arguments of the test's ``gate`` marker, if it has one;
    ``check_trigger`` a declarative check's trigger (a property of the gate, shown as
    such whatever its outcome)."""
    if check_trigger is not None:
        name = str((gate or {}).get("name") or nodeid)
        trigger = check_trigger
        item.stash[meta_key] = (name, trigger, False, True)
    elif gate:
        name = str(gate.get("name") or nodeid)
        value = gate.get("trigger", "block")
        if value not in ("rollback", "block"):
            # Like a mistake in a [[checks]] table's trigger: the run cannot say what a
            # failure of this gate means, so it does not start.
            raise pytest.UsageError(
                f'{nodeid}: @pytest.mark.gate(trigger={value!r}): expected "rollback" or "block"'
            )
        trigger = value == "rollback"
        watch = gate.get("watch", False)
        if watch is not True and watch is not False:  # re-run by the watch (docs/watch.md)
            raise pytest.UsageError(
                f"{nodeid}: @pytest.mark.gate(watch={watch!r}): expected True or False"
            )
        item.stash[meta_key] = (name, trigger, "trigger" in gate, False)
    else:  # what recorder_for assumes when nothing is stashed, and a record without them
        return
    if name != nodeid or trigger:
        # Only what says more than the defaults travels with every report (a named gate, a
        # rollback trigger): a passing case's properties cost pytest's junitxml ~45 k
        # instructions each. A gate that does not pass gets them on its JUnit case anyway
        # (the Collector, :func:`case_properties`); a passing one is listed in the suite.
        properties = item.user_properties
        properties.append((_GATE_KEY, name))
        properties.append(_ROLLBACK if trigger else _BLOCK)


def case_properties(name: str, rollback_trigger: bool) -> list[tuple[str, object]]:
    """The per-case ``promotion.gate`` and ``promotion.trigger`` properties."""
    return [(_GATE_KEY, name), _ROLLBACK if rollback_trigger else _BLOCK]
