"""The fast encodings of the gates (JSON report, ``promotion.passed``) write exactly what
``json.dumps`` writes of the same facts, for every kind of gate and awkward text."""

from __future__ import annotations

import json

import pytest

from pytest_promotion.decision import Decision, GateRecord
from pytest_promotion.reporting.json_report import SCHEMA, report_text
from pytest_promotion.reporting.junit import passed_gates


def _decision(n: int) -> Decision:
    gates = [
        GateRecord(id=f"t.py::g[{i}]", name=f"staging::g{i}", outcome="passed", duration=i / 7)
        for i in range(n)
    ]
    gates[0].measured, gates[0].threshold = '12 ms "\u00e9\n\u2028', "<= 5 \\ ms"
    gates[1].rollback_trigger, gates[1].waiver = True, "known \x00 flake"
    gates[2].outcome, gates[2].message = "failed", "boom \U0001f4a5"
    gates[3].xfail = True
    gates[4].targets = [{"target": "a:1", "ok": False, "latency": 1.5e-9}]
    gates[5].outcome, gates[5].duration = "skipped", 3.0
    return Decision(
        "block", "staging", "1.2", ["why \u00e9"], gates, [{"gate": "g1", "reason": "r"}],
        warnings=["w"], rollback_command="undo", rollback_result={"exit": 0},
    )  # fmt: skip


@pytest.mark.parametrize("gates", [6, 200, 201, 1000])
def test_report_text_is_what_json_dumps_writes(gates: int) -> None:
    decision = _decision(gates)
    extra = {"config": "promotion.toml", "selection": {"selected": gates}, "ledger": {"gates": []}}
    expected = json.dumps(
        {"schema": SCHEMA, **decision.to_json(), **extra}, indent=2 if gates <= 200 else None
    )
    assert report_text(decision, extra) == expected


def test_passed_gates_is_what_json_dumps_writes() -> None:
    decision = _decision(50)
    expected = [
        {"id": g.id, "gate": g.name, "trigger": "rollback" if g.rollback_trigger else "block",
         "measured": g.measured, "threshold": g.threshold}
        for g in decision.gates if g.outcome == "passed" and not g.xfail
    ]  # fmt: skip
    assert passed_gates(decision) == json.dumps(expected, separators=(",", ":"))
