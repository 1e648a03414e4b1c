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


@dataclass(eq=False)  # by identity: each generated method costs every run start-up
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


@dataclass(eq=False, repr=False)  # internal; each generated method costs start-up
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
    # mistakes found at collection (a gate marker's trigger, a waiver naming no gate):
    # no gate runs, and the run ends in a usage error (exit 4)
    usage_errors: list[str] = field(default_factory=list)
    # paths under the run's arguments excluded from collection (--ignore, collect_ignore...)
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True, eq=False)  # by identity (see GateRecord)
class Decision:
    """The verdict of a run, with everything a report needs.

    Frozen: the finalising pipeline (:mod:`.finalise`) makes each change as a new
    decision (``dataclasses.replace``), so no hook or writer amends the verdict in place.
    """

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
    # the run ended in a usage error (exit 4): its reasons say which
    usage_error: bool = False

    @property
    def promote(self) -> bool:
        return self.decision == "promote"

    def to_json(self, gates: bool = True) -> dict[str, Any]:
        """The decision as JSON data; ``gates=False``: without the ``gates`` key (the JSON
        report encodes them itself)."""
        data = {
            "decision": self.decision,
            "environment": self.environment,
            "version": self.version,
            "rollback_command": self.rollback_command,
            "reasons": self.reasons,
            "gates": [g.to_json() for g in self.gates] if gates else [],
            "waivers": self.waivers,
            "warnings": self.warnings,
            "rollback": {"argv": self.rollback_argv, "result": self.rollback_result},
        }
        if not gates:
            del data["gates"]
        return data


def _waiver_key(record: GateRecord, waivers: Mapping[str, str]) -> str | None:
    """The ``--waive`` key naming this gate: its name, its id, or its name as written in
    the config or the marker (``agent-health`` for ``staging::agent-health``)."""
    for key in (record.name, record.id, record.name.rpartition("::")[2]):
        if key in waivers:
            return key
    return None


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


def _ignored(facts: RunFacts) -> str:
    n = len(facts.ignored)
    first = ", ".join(facts.ignored[:3]) + (", ..." if n > 3 else "")
    paths = "path" if n == 1 else "paths"
    return (
        f"{n} {paths} excluded from collection (--ignore, --ignore-glob, collect_ignore "
        f"or a plugin): {first}"
    )


class _Verdicts:
    """Reasons gathered while deciding: rollback triggers, blocks, warnings. (A plain
    class: a dataclass compiles its methods at import, which every run pays.)"""

    __slots__ = ("block", "rollback", "warnings")

    def __init__(self) -> None:
        self.rollback: list[str] = []
        self.block: list[str] = []
        self.warnings: list[str] = []

    def partial(self, facts: RunFacts, warning: str, blocking: str) -> None:
        """Something ran only part of the gates: a warning, or a block where skips are
        forbidden."""
        if facts.allow_skips:
            self.warnings.append(warning)
        else:
            self.block.append(blocking)


def _judge_run(facts: RunFacts, out: _Verdicts) -> None:
    """What the run itself showed: interrupts, errors, crashes, partial runs."""
    if facts.interrupted:
        out.block.append(
            f"the run was interrupted ({facts.interrupted}): it cannot vouch for the release"
        )
    if facts.stopped:
        out.block.append(
            f"the run stopped early ({facts.stopped}): it cannot vouch for the release"
        )
    out.block.extend(f"internal error: {e}" for e in facts.internal_errors)
    out.block.extend(f"collection error: {e}" for e in facts.collection_errors)
    out.block.extend(f"xdist worker {w} crashed" for w in facts.crashed_workers)
    for path, reason in facts.skipped_modules:
        out.partial(
            facts,
            f"{path} was skipped at collection: {reason}".rstrip(": "),
            f"{path} was skipped at collection, and {facts.environment} forbids skips: "
            f"{reason}".rstrip(": "),
        )
    if facts.dropped:
        text = _dropped(facts)
        out.partial(facts, text, text)
    if facts.ignored:
        text = _ignored(facts)
        out.partial(
            facts,
            f"{text}: this run vouches only for the rest",
            f"{text}: a partial run cannot promote {facts.environment}",
        )
    if facts.narrowed:
        out.partial(
            facts,
            f"{facts.narrowed}: this run vouches only for them",
            f"{facts.narrowed}: a partial run cannot promote {facts.environment}",
        )
    if not facts.collected and not (facts.interrupted or facts.stopped):
        out.block.append("collection did not finish")
    if facts.collected and not facts.selected and not facts.usage_errors:
        hint = (
            f" ({facts.unmarked} tests without an environment marker were deselected)"
            if facts.unmarked
            else ""
        )
        out.block.append(f"no gate selected for {facts.environment}{hint}")


def _gate_problem(record: GateRecord, facts: RunFacts, out: _Verdicts) -> tuple[str | None, bool]:
    """What speaks against one gate that did not simply pass: (problem or None, whether
    it is a rollback trigger). A skip where skips are allowed is a warning (in ``out``)."""
    label = record.name if record.name == record.id else f"{record.name} ({record.id})"
    if record.crashed:
        return f"gate {label} crashed its xdist worker", False
    if record.outcome == NOT_RUN:
        return f"gate {label} did not run", False
    if record.xfail:
        return f"gate {label} is marked xfail: a gate expected to fail cannot vouch", False
    if record.outcome == FAILED:
        return f"gate {label} failed: {record.message}".rstrip(": "), record.rollback_trigger
    if record.outcome == ERROR:
        return f"gate {label} errored (no measurement): {record.message}".rstrip(": "), False
    if record.outcome == SKIPPED:
        if facts.allow_skips:
            out.warnings.append(f"gate {label} was skipped: {record.message}".rstrip(": "))
            return None, False
        return (
            f"gate {label} was skipped, and {facts.environment} forbids skips: {record.message}"
        ).rstrip(": "), False
    return None, False


def _judge_gates(
    facts: RunFacts, records: Mapping[str, GateRecord], out: _Verdicts
) -> tuple[list[GateRecord], set[str]]:
    """Every selected gate's record (a missing one did not run), and the waivers used."""
    gates: list[GateRecord] = []
    used: set[str] = set()
    for gate_id in facts.selected:
        record = records.get(gate_id) or GateRecord(id=gate_id, name=gate_id)
        gates.append(record)
        if record.outcome == PASSED and not record.xfail and not record.crashed:
            continue  # the common case, once per gate: nothing to say
        problem, trigger = _gate_problem(record, facts, out)
        if problem is None:
            continue
        key = _waiver_key(record, facts.waivers)
        if key is not None:
            record.waiver = facts.waivers[key]
            used.add(key)
        else:
            (out.rollback if trigger else out.block).append(problem)
    return gates, used


def _judge_waivers(
    facts: RunFacts, gates: list[GateRecord], used: set[str], out: _Verdicts
) -> list[dict[str, Any]]:
    waivers = []
    for gate, reason in facts.waivers.items():
        waivers.append({"gate": gate, "reason": reason, "used": gate in used})
        if gate in used or facts.usage_errors:  # a usage error says what is wrong
            continue
        if any(gate in (g.name, g.id, g.name.rpartition("::")[2]) for g in gates):
            out.warnings.append(f"waiver for {gate} was not needed: the gate did not fail")
        else:
            out.block.append(f"waiver for {gate!r} names no selected gate")
    return waivers


def decide(
    facts: RunFacts, records: Mapping[str, GateRecord], version: str | None = None
) -> Decision:
    """Apply the decision rules to what the run recorded."""
    out = _Verdicts()
    out.block.extend(f"usage error: {e}" for e in facts.usage_errors)
    _judge_run(facts, out)
    gates, used = _judge_gates(facts, records, out)
    waivers = _judge_waivers(facts, gates, used, out)
    if facts.foreign_failures:
        out.block.append(
            f"the run reports {facts.foreign_failures} failure(s) outside the gates "
            "(another plugin failed the session)"
        )
    verdict: Verdict = "rollback" if out.rollback else "block" if out.block else "promote"
    return Decision(
        decision=verdict,
        environment=facts.environment,
        version=version,
        reasons=out.rollback + out.block,
        gates=gates,
        waivers=waivers,
        warnings=out.warnings,
        usage_error=bool(facts.usage_errors),
    )
