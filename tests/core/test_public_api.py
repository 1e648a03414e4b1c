"""The public API is exactly ``pytest_promotion.__all__``: what users annotate and catch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_promotion

PUBLIC = [
    "BoundSession",
    "CheckConfigError",
    "CheckFailed",
    "CheckKind",
    "ConfigError",
    "Decision",
    "Environment",
    "GateRecord",
    "GateRecorder",
    "Outcome",
    "Probe",
    "Target",
    "__version__",
]


def test_the_public_names_are_pinned() -> None:
    assert sorted(pytest_promotion.__all__) == PUBLIC


def test_every_public_name_is_the_internal_object() -> None:
    from pytest_promotion.checks.base import CheckFailed, Outcome
    from pytest_promotion.checks.http_session import BoundSession
    from pytest_promotion.decision import Decision
    from pytest_promotion.gate import GateRecorder

    assert pytest_promotion.CheckFailed is CheckFailed
    assert pytest_promotion.Outcome is Outcome
    assert pytest_promotion.BoundSession is BoundSession
    assert pytest_promotion.Decision is Decision
    assert pytest_promotion.GateRecorder is GateRecorder
    for name in PUBLIC:
        assert getattr(pytest_promotion, name) is not None


@pytest.mark.integration
def test_importing_the_package_loads_nothing_heavy() -> None:
    # pytest imports the package for every run, gate run or not: the names load on use.
    code = (
        "import sys, pytest_promotion; "
        "heavy = {'requests', 'tomllib', 'pytest_promotion.checks.http_session'} & set(sys.modules); "
        "assert not heavy, heavy; "
        "from pytest_promotion import BoundSession, Probe; "
        "assert BoundSession.__name__ == 'BoundSession' and Probe.__name__ == 'Probe'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
