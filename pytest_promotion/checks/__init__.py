"""Check kinds: one module per protocol or tool, none of which knows pytest.

Modules are imported only when a check of their kind is configured, so a run that uses
no Redis check never imports redis-py.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .base import CheckConfigError, CheckFailed, Outcome, Target

__all__ = ["KINDS", "CheckConfigError", "CheckFailed", "Outcome", "Target", "kind_module"]

# kind name -> module under pytest_promotion.checks
KINDS: dict[str, str] = {
    "http": "http",
    "tls": "tls",
    "tcp": "tcp",
    "redis": "redis_check",
    "postgres": "postgres",
    "prometheus": "prometheus",
    "grafana": "grafana",
    "coverage": "coverage_check",
    "bandit": "security",
    "sarif": "security",
    "pip_audit": "security",
    "vex": "security",
    "command": "command",
    "benchmark": "benchmark",
    "requires_previous": "policy",  # the ledger's policy kinds (docs/ledger.md)
    "approval": "policy",
    "approvals": "policy",
    "same_artifact": "policy",
    "version_pattern": "policy",
    "no_downgrade": "policy",
    "rollback_ready": "policy",
    "file": "host_file",
}


def kind_module(kind: str) -> ModuleType:
    """The module implementing ``kind`` (imported on first use)."""
    return importlib.import_module(f"{__name__}.{KINDS[kind]}")
