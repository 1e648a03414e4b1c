"""Per-gate records -> one decision. The fail-closed rules live here and nowhere else.

- ``promote``: at least one gate ran and every selected gate passed (or carries a waiver);
- ``rollback``: a failed gate is a rollback trigger (health check, critical security
  finding, performance regression beyond its limit);
- ``block``: any other failure, and every case where the run cannot vouch for the release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Decision", "GateRecord", "RunFacts", "decide"]

Verdict = Literal["promote", "block", "rollback"]
PASSED, FAILED, ERROR, SKIPPED, NOT_RUN = "passed", "failed", "error", "skipped", "not run"


@dataclass
class GateRecord:
    """What one gate showed: the evidence behind the decision."""

    id: str
    name: str
    outcome: str = NOT_RUN
    measured: str | None = None
    threshold: str | None = None
    message: str = ""
    rollback_trigger: bool = False
    xfail: bool = False
    crashed: bool = False
    waiver: str | None = None
    duration: float = 0.0
    targets: list[dict[str, Any]] | None = None  # a fleet check's every target (checks/fleet.py)

    def to_json(self) -> dict[str, Any]:
        fleet = {"targets": self.targets} if self.targets is not None else {}
        return {
            "id": self.id,
            "name": self.name,
            "outcome": self.outcome,
            "measured": self.measured,
            "threshold": self.threshold,
            "message": self.message,
            "rollback_trigger": self.rollback_trigger,
            "waiver": self.waiver,
            "duration": round(self.duration, 6),
            **fleet,
        }


@dataclass
class RunFacts:
    """What the run itself showed, apart from the gates."""

    environment: str
    selected: Sequence[str] = ()
    unmarked: int = 0
    allow_skips: bool = True
    waivers: Mapping[str, str] = field(default_factory=dict)
    collection_errors: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    crashed_workers: list[str] = field(default_factory=list)
    interrupted: str | None = None
    stopped: str | None = None  # -x, --maxfail, a collection error or pytest.exit ended it
    foreign_failures: int = 0
    collected: bool = False
    # (node id, reason) of modules (or directories) skipped at collection
    skipped_modules: list[tuple[str, str]] = field(default_factory=list)
    # gates the plugin selected that something later dropped (-k, --lf, a conftest...)
    dropped: list[str] = field(default_factory=list)
    # what else ran only part of the gates, e.g. --lf, which filters during collection
    narrowed: str | None = None


@dataclass
class Decision:
    """The verdict of a run, with everything a report needs."""

    decision: Verdict
    environment: str
    version: str | None
    reasons: list[str]
    gates: list[GateRecord]
    waivers: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    rollback_command: str | None = None
    rollback_argv: list[str] | None = None
    rollback_result: dict[str, Any] | None = None

    @property
    def promote(self) -> bool:
        return self.decision == "promote"

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "environment": self.environment,
            "version": self.version,
            "rollback_command": self.rollback_command,
            "reasons": self.reasons,
            "gates": [g.to_json() for g in self.gates],
            "waivers": self.waivers,
            "warnings": self.warnings,
            "rollback": {"argv": self.rollback_argv, "result": self.rollback_result},
        }


def _waiver_for(record: GateRecord, waivers: Mapping[str, str]) -> str | None:
    return waivers.get(record.name, waivers.get(record.id))


def _dropped(facts: RunFacts) -> str:
    n = len(facts.dropped)
    were = "gate" if n == 1 else "gates"
    first = ", ".join(facts.dropped[:3]) + (", ..." if n > 3 else "")
    tail = (
        f"this run vouches only for the rest (e.g. {first})"
        if facts.allow_skips
        else f"a partial run cannot promote {facts.environment} (e.g. {first})"
    )
    return (
        f"{n} {were} of {facts.environment} {'was' if n == 1 else 'were'} deselected "
        f"(-k, -m, --deselect, --lf, --sw or a conftest): {tail}"
    )


def decide(
    facts: RunFacts, records: Mapping[str, GateRecord], version: str | None = None
) -> Decision:
    """Apply the decision rules to what the run recorded."""
    block: list[str] = []
    rollback: list[str] = []
    warnings: list[str] = []
    if facts.interrupted:
        block.append(
            f"the run was interrupted ({facts.interrupted}): it cannot vouch for the release"
        )
    if facts.stopped:
        block.append(f"the run stopped early ({facts.stopped}): it cannot vouch for the release")
    block += [f"internal error: {e}" for e in facts.internal_errors]
    block += [f"collection error: {e}" for e in facts.collection_errors]
    block += [f"xdist worker {w} crashed" for w in facts.crashed_workers]
    for path, reason in facts.skipped_modules:
        if facts.allow_skips:
            warnings.append(f"{path} was skipped at collection: {reason}".rstrip(": "))
        else:
            block.append(
                f"{path} was skipped at collection, and {facts.environment} forbids skips: "
                f"{reason}".rstrip(": ")
            )
    if facts.dropped:
        (warnings if facts.allow_skips else block).append(_dropped(facts))
    if facts.narrowed:
        if facts.allow_skips:
            warnings.append(f"{facts.narrowed}: this run vouches only for them")
        else:
            block.append(f"{facts.narrowed}: a partial run cannot promote {facts.environment}")
    if not facts.collected and not (facts.interrupted or facts.stopped):
        block.append("collection did not finish")
    if facts.collected and not facts.selected:
        hint = (
            f" ({facts.unmarked} tests without an environment marker were deselected)"
            if facts.unmarked
            else ""
        )
        block.append(f"no gate selected for {facts.environment}{hint}")

    gates: list[GateRecord] = []
    used: set[str] = set()
    for gate_id in facts.selected:
        record = records.get(gate_id) or GateRecord(id=gate_id, name=gate_id)
        gates.append(record)
        if record.outcome == PASSED and not record.xfail and not record.crashed:
            continue  # the common case, once per gate: nothing to say
        waiver = _waiver_for(record, facts.waivers)
        label = record.name if record.name == record.id else f"{record.name} ({record.id})"
        problem: str | None = None
        trigger = False
        if record.crashed:
            problem = f"gate {label} crashed its xdist worker"
        elif record.outcome == NOT_RUN:
            problem = f"gate {label} did not run"
        elif record.xfail:
            problem = f"gate {label} is marked xfail: a gate expected to fail cannot vouch"
        elif record.outcome == FAILED:
            problem = f"gate {label} failed: {record.message}".rstrip(": ")
            trigger = record.rollback_trigger
        elif record.outcome == ERROR:
            problem = f"gate {label} errored (no measurement): {record.message}".rstrip(": ")
        elif record.outcome == SKIPPED:
            if facts.allow_skips:
                warnings.append(f"gate {label} was skipped: {record.message}".rstrip(": "))
            else:
                problem = (
                    f"gate {label} was skipped, and {facts.environment} forbids skips: "
                    f"{record.message}"
                ).rstrip(": ")
        if problem is None:
            continue
        if waiver is not None:
            record.waiver = waiver
            used.add(record.name if record.name in facts.waivers else record.id)
            continue
        (rollback if trigger else block).append(problem)

    waivers = []
    for gate, reason in facts.waivers.items():
        waivers.append({"gate": gate, "reason": reason, "used": gate in used})
        if gate not in used:
            known = any(gate in (g.name, g.id) for g in gates)
            if known:
                warnings.append(f"waiver for {gate} was not needed: the gate did not fail")
            else:
                block.append(f"waiver for {gate!r} names no selected gate")
    if facts.foreign_failures:
        block.append(
            f"the run reports {facts.foreign_failures} failure(s) outside the gates "
            "(another plugin failed the session)"
        )
    verdict: Verdict = "rollback" if rollback else "block" if block else "promote"
    return Decision(
        decision=verdict,
        environment=facts.environment,
        version=version,
        reasons=rollback + block,
        gates=gates,
        waivers=waivers,
        warnings=warnings,
    )
