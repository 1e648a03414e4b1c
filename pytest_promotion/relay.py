"""What travels between xdist workers and the controller, in one place.

A worker selects and masks (:class:`.session.Selector`) and runs its gates; the reports
travel through xdist itself. What else the controller must know (gates something
dropped, ``--lf`` narrowing, what the selection left out, usage errors found at
collection) a :class:`WorkerRelay` puts into ``config.workeroutput``, and the
:class:`ControllerRelay` reads it when the worker goes down, before the controller
decides. The xdist hooks are optional: without xdist they are never called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .decision import GateRecord
from .role import Role

if TYPE_CHECKING:
    from .run import PromotionRun

__all__ = ["ControllerRelay", "WorkerRelay"]

OUTPUT_KEY = "promotion"


class WorkerRelay(Role):
    """Worker side: hand what the selection found to the controller."""

    def __init__(self, run: PromotionRun) -> None:
        self.run = run

    @pytest.hookimpl(trylast=True)  # after the selector's collection_finish
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        facts, counts = self.run.facts, self.run.counts
        output: dict[str, Any] = session.config.workeroutput  # type: ignore[attr-defined]
        output[OUTPUT_KEY] = {
            "dropped": list(facts.dropped),
            "narrowed": facts.narrowed,
            "unmarked": facts.unmarked,
            "deselected_other": counts.deselected_other,
            "leaky_ids": list(counts.leaky_ids),
            "usage_errors": list(facts.usage_errors),
            "ignored": list(facts.ignored),
        }


class ControllerRelay(Role):
    """Controller side: fold what each worker said into the run's facts."""

    def __init__(self, run: PromotionRun, records: dict[str, GateRecord]) -> None:
        self.run = run
        self.records = records

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        facts = self.run.facts
        if not facts.collected:
            facts.selected = list(ids)
            facts.collected = True

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        facts, counts = self.run.facts, self.run.counts
        said = (getattr(node, "workeroutput", None) or {}).get(OUTPUT_KEY) or {}
        facts.dropped = list(dict.fromkeys([*facts.dropped, *said.get("dropped", ())]))
        facts.narrowed = said.get("narrowed") or facts.narrowed
        # Every worker collects the same tests: the counts are the same on each.
        facts.unmarked = max(facts.unmarked, said.get("unmarked", 0))
        counts.deselected_other = max(counts.deselected_other, said.get("deselected_other", 0))
        for leaky in said.get("leaky_ids", ()):
            if leaky not in counts.leaky_ids:
                counts.leaky_ids.append(leaky)
        for path in said.get("ignored", ()):
            if path not in facts.ignored:
                facts.ignored.append(path)
        for error_line in said.get("usage_errors", ()):
            if error_line not in facts.usage_errors:
                facts.usage_errors.append(error_line)
        if error is not None:
            facts.crashed_workers.append(str(getattr(getattr(node, "gateway", None), "id", node)))

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        self.records.setdefault(crashitem, GateRecord(id=crashitem, name=crashitem)).crashed = True
