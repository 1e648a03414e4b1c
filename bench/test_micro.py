"""Micro-benchmarks of the plugin's hot paths (pytest-benchmark).

The staging gate runs these and compares them with ``bench/baseline.json``: a median more
than 50 % slower is a performance regression, the seed's rollback trigger.

    python -m pytest bench/test_micro.py -p no:cacheprovider --benchmark-only
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_promotion.decision import GateRecord, RunFacts, decide
from pytest_promotion.redact import redact
from pytest_promotion.selection import EnvMark, applies

CHAIN = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def records() -> dict[str, GateRecord]:
    return {
        f"gates/test_{n}.py::test_gate": GateRecord(
            id=f"gates/test_{n}.py::test_gate",
            name=f"gate-{n}",
            outcome="passed" if n % 50 else "failed",
            measured=f"{n} ms",
            threshold="<= 500 ms",
            message="" if n % 50 else "slow",
        )
        for n in range(2000)
    }


def test_decide_2000_gates(benchmark: Any, records: dict[str, GateRecord]) -> None:
    facts = RunFacts(environment="staging", selected=list(records), collected=True)
    decision = benchmark(decide, facts, records)
    assert decision.decision == "block"


def test_redact_a_failure_message(benchmark: Any) -> None:
    text = (
        "connection to postgresql://app:s3cr3t-pa55@db.internal:5432/app failed; "
        "headers={'Authorization': 'Bearer abc.def'}\n" * 50
    )
    result = benchmark(redact, text, ("s3cr3t-pa55", "another-secret-value"))
    assert "s3cr3t" not in result


def test_select_2000_items(benchmark: Any) -> None:
    marks = [[EnvMark(CHAIN[n % 3], only=n % 7 == 0)] for n in range(2000)]

    def select() -> int:
        return sum(1 for m in marks if applies(m, "staging", CHAIN))

    assert benchmark(select) > 0
