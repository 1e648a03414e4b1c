"""pytest-promotion: promotion gates as pytest checks.

Run ``pytest --env=staging`` and the plugin selects the gates that apply to staging,
records what each measured, and decides ``promote``, ``block`` or ``rollback``.

The public API is exactly ``__all__``: what a gate, a conftest hook or a check kind
annotates and catches. Every other module is internal and may change without notice::

    from pytest_promotion import BoundSession, Environment, GateRecorder, Probe

    @pytest.mark.staging
    def test_health(http: BoundSession, gate: GateRecorder) -> None:
        gate.measure(http.get("/health").elapsed.total_seconds() * 1000, max=500, unit="ms")

The names are imported on first use, so ``import pytest_promotion`` (which pytest does
for every run, gate run or not) stays cheap: no requests, no TOML parser.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checks.base import CheckConfigError, CheckFailed, CheckKind, Outcome, Target
    from .checks.http_session import BoundSession
    from .decision import Decision, GateRecord
    from .environment import Environment
    from .gate import GateRecorder
    from .probes import Probe
    from .schema import ConfigError

__all__ = [
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

__version__ = "0.1.0"

# public name -> the internal module that defines it
_WHERE = {
    "BoundSession": "checks.http_session",
    "CheckConfigError": "checks.base",
    "CheckFailed": "checks.base",
    "CheckKind": "checks.base",
    "ConfigError": "schema",
    "Decision": "decision",
    "Environment": "environment",
    "GateRecord": "decision",
    "GateRecorder": "gate",
    "Outcome": "checks.base",
    "Probe": "probes",
    "Target": "checks.base",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once: later reads do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
