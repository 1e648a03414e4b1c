"""Check kinds: one module per protocol or tool, none of which knows pytest.

Every kind, built in or third-party, is found through one :data:`registry`. A kind is
loaded only when a check of its kind is configured, so a run with no fleet check never
imports aiohttp, and one with no ``file`` check never imports pytest-testinfra.

Third-party packages add kinds through the ``pytest_promotion.kinds`` entry-point group
(``name = "package.module"`` or ``"package.module:object"``) or the
``pytest_promotion_add_kinds`` hook; see docs/extending.md.
"""

from __future__ import annotations

from typing import Any

from .base import CheckConfigError, CheckFailed, CheckKind, Outcome, Target
from .registry import KindRegistry, registry

__all__ = [
    "KINDS",
    "SERVICES",
    "CheckConfigError",
    "CheckFailed",
    "CheckKind",
    "KindRegistry",
    "Outcome",
    "Target",
    "kind_module",
    "registry",
]

# The built-in kinds: kind name -> module under pytest_promotion.checks (imported on first
# use). The registry reads this table; a new built-in kind is one line here.
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
    "file": "host_file",
    "requires_previous": "policy",  # the ledger's policy kinds (docs/ledger.md)
    "approval": "policy",
    "approvals": "policy",
    "same_artifact": "policy",
    "version_pattern": "policy",
    "no_downgrade": "policy",
    "rollback_ready": "policy",
}

# Kinds whose name is also an environment key holding the service's URL (``redis =
# "redis://..."`` in ``[environments.NAME]``) and a ``{placeholder}`` in checks.
SERVICES: tuple[str, ...] = ("redis", "postgres", "prometheus", "grafana")

registry.add_builtins(__name__, KINDS, SERVICES)


def kind_module(kind: str) -> Any:
    """The implementation of ``kind`` (loaded on first use); kept for callers written
    before the registry: prefer ``registry.get(kind)``."""
    return registry.get(kind).implementation
