"""``pytest --env=NAME --promotion-plan``: the gates NAME would run, nothing run.

Every gate is listed, declarative (promotion.toml, values as written: ``${VAR}`` is not
resolved, so no secret is read) and Python (the collected tests whose markers apply),
with its trigger and threshold. Nothing is probed, no target is launched, no decision,
report or record is made; the run exits 0 (2 or 4 for a collection or config error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from .checks import KINDS, kind_module
from .config import PromotionConfig, canonical
from .redact import redact
from .role import Role
from .selection import partition

__all__ = ["PlanPlugin", "declarative_rows"]

Row = tuple[str, str, str, str]  # gate, what, trigger, threshold
_THRESHOLD_PREFIXES = ("min", "max", "expect", "consecutive")


def _default_trigger(kind: str) -> str:
    return "rollback" if getattr(kind_module(kind), "ROLLBACK", False) else "block"


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, list):
        text = " ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {v!r}" for k, v in value.items()) + "}"
    text = redact(text)  # a password in a URL written into the file
    return text if len(text) <= 60 else text[:57] + "..."


# what a kind checks when the config sets no threshold key
_DEFAULTS = {
    "command": "exit 0",
    "bandit": "high <= 5, critical <= 0",
    "sarif": "high <= 5, critical <= 0",
}


def _threshold(kind: str, check: Mapping[str, Any]) -> str:
    parts = [f"{k} = {_shown(v)}" for k, v in check.items() if k.startswith(_THRESHOLD_PREFIXES)]
    return ", ".join(parts) or _DEFAULTS.get(kind, "(the kind's defaults)")


def applicable_checks(config: PromotionConfig, name: str) -> list[Mapping[str, Any]]:
    """The raw declarative checks of ``name``: its own, then the shared ones that apply."""
    table = config.tables.get(name, {})
    checks: list[Mapping[str, Any]] = list(table.get("checks", []))
    position = config.chain.index(name)
    for check in config.shared_checks:
        if "environments" in check:
            applies = name in {canonical(n) for n in check["environments"]}
        else:
            applies = position >= config.chain.index(canonical(check.get("from", config.chain[0])))
        if applies:
            checks.append(check)
    return checks


def declarative_rows(config: PromotionConfig, name: str) -> list[Row]:
    rows = []
    for check in applicable_checks(config, name):
        kind = next(k for k in check if k in KINDS)
        trigger = str(check.get("trigger") or _default_trigger(kind))
        what = f"{kind} {_shown(check[kind])}"
        rows.append((f"{name}::{check.get('name', kind)}", what, trigger, _threshold(kind, check)))
    return rows


def _table(rows: Sequence[Row]) -> list[str]:
    header: Row = ("gate", "checks", "trigger", "threshold")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    return [
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]


class PlanPlugin(Role):
    """Registered instead of the promotion session when --promotion-plan is given."""

    def __init__(self, config: pytest.Config, env: str) -> None:
        self.config = config
        from .run import run_config

        self.promotion = run_config(config)
        self.name = self.promotion.chain_name(env) or canonical(env)
        if self.name not in self.promotion.chain:
            raise pytest.UsageError(
                f"--env {env}: unknown environment (known: {', '.join(self.promotion.chain)}; "
                f"from {self.promotion.label})"
            )
        self.python_rows: list[Row] = []
        self.not_gates = 0

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        gates, unmarked, other = partition(items, self.promotion.chain, self.name)
        for item, marks in gates:
            kwargs = marks.gate.kwargs if marks.gate else {}
            self.python_rows.append(
                (
                    str(kwargs.get("name") or item.nodeid),
                    _shown(item.nodeid),
                    str(kwargs.get("trigger") or "block"),
                    "(gate.measure at run time)",
                )
            )
        self.not_gates = len(unmarked) + len(other)
        items[:] = [item for item, _ in gates]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        rows = declarative_rows(self.promotion, self.name) + self.python_rows
        reporter: Any = session.config.pluginmanager.get_plugin("terminalreporter")
        chain = " -> ".join(f"[{n}]" if n == self.name else n for n in self.promotion.chain)
        lines = [
            f"promotion plan: {chain} (config: {self.promotion.label}): {len(rows)} gates, "
            "nothing run, no decision",
            *_table(rows),
        ]
        if self.not_gates:
            lines.append(f"({self.not_gates} collected tests are not gates of {self.name})")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line)
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Only declarative gates (no Python gate collected) is a plan too, not "no tests".
        if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK
