"""The watch in a gate run (the controller only): ``--promotion-watch DURATION`` or the
environment's ``watch`` table.

- A hold on the environment (a watch's rollback, or its block-and-hold, not yet released
  with ``promotion release-hold``) blocks a promote: the ledger's plugin enforces it.
- After the finalize step (the ledger has recorded the promote), a promote is watched
  (:func:`after_promote`, called once from the run's finalising pipeline): the watch
  appends its measurements to the ledger while the run still holds the environment's
  lease; a watch that decides rollback turns the decision into rollback (the run's own
  rollback step then runs the command, with its hook, once); a block-and-hold or an
  interrupt turns it into block and the run's rollback step is skipped (a provider outage
  is never a reason to roll back).
- The watch is a gate of the decision (``<env>::watch``): every report shows it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal

import pytest

from ..decision import Decision, GateRecord
from ..redact import redact
from ..role import Role
from .engine import WatchResult
from .pygates import gate_run_call
from .runner import Stop, WatchRequest, on_signals, run_watch, settings_for
from .settings import WatchSettings

__all__ = ["NAME", "WatchPlugin", "addoption", "after_promote", "install"]

NAME = "promotion-watch"


def addoption(group: Any) -> None:
    group.addoption(
        "--promotion-watch",
        metavar="DURATION",
        help="after a promote, watch the environment's health checks for DURATION "
        "(30m, 24h; also the environment's watch table); see docs/watch.md",
    )


def install(config: pytest.Config, promotion: Any, environment: Any) -> None:
    """Register the watch on the controller (one line in the plugin's configure)."""
    if hasattr(config, "workerinput"):
        return
    config.pluginmanager.register(WatchPlugin(config, promotion, environment), NAME)


def after_promote(config: pytest.Config, decision: Decision) -> tuple[Decision, bool]:
    """The watch seam of the finalising pipeline: (the decision after the watch, whether
    the run's rollback step must be skipped). A no-op without a watch."""
    plugin = config.pluginmanager.get_plugin(NAME)
    if plugin is None or not decision.promote:
        return decision, False
    result: tuple[Decision, bool] = plugin.watch(decision)
    return result


class WatchPlugin(Role):
    def __init__(self, config: pytest.Config, promotion: Any, environment: Any) -> None:
        self.config, self.promotion, self.environment = config, promotion, environment
        self.result: WatchResult | None = None
        self._said = False
        self.settings: WatchSettings | None = self._settings()

    def _settings(self) -> WatchSettings | None:
        if self.config.getoption("promotion_watch_gates", None):
            return None  # the watch's own measurement run (child.py): it never watches
        option = self.config.getoption("promotion_watch", None)
        env = self.environment.name
        if option is None and self.promotion.tables.get(env, {}).get("watch") is None:
            return None
        try:
            return settings_for(self.promotion, env, option)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    def _context(self) -> Any:
        ledger = self.config.pluginmanager.get_plugin("promotion-ledger")
        return getattr(ledger, "context", None), ledger

    # -- the watch ---------------------------------------------------------------------
    def watch(self, decision: Decision) -> tuple[Decision, bool]:
        if self.settings is None:
            return decision, False
        context, ledger = self._context()
        execute = self.config.getoption("promotion_rollback", "print") == "execute"
        request = WatchRequest(
            config=self.promotion, env=self.environment.name, settings=self.settings,
            version=decision.version or getattr(context, "version", None),
            digest=getattr(context, "digest", None), actor=getattr(context, "actor", "unknown"),
            ledger_option=self.config.getoption("promotion_ledger", None),
            previous_version=self.config.getoption("promotion_previous_version", None)
            or os.environ.get("PROMOTION_PREVIOUS_VERSION") or None,
            caller_executes=execute, decision_record=getattr(ledger, "record_id", None),
            pytest_call=gate_run_call(self.config, self.promotion.path),
        )  # fmt: skip
        stop = Stop()
        try:
            with on_signals(stop):
                self.result = result = run_watch(request, self._say, stop)
        except Exception as exc:  # the ledger's settings, a bug: a block, never a traceback
            text = " ".join(str(exc).split())[:300]
            why = redact(f"watch: the watch could not run ({type(exc).__name__}: {text}): an "
                         "unwatched promote is never a promote", self.environment.secrets)  # fmt: skip
            return dataclasses.replace(decision, decision="block",
                                       reasons=[*decision.reasons, why]), True  # fmt: skip
        gate = self._gate(result)
        gates = [*decision.gates, gate]
        warnings = [*decision.warnings, *result.warnings]
        if result.decision == "promote":
            return dataclasses.replace(decision, gates=gates, warnings=warnings), False
        reason = f"watch: {result.reason}" + (f"; {result.hold}" if result.hold else "")
        verdict: Literal["rollback", "block"] = (
            "rollback" if result.decision == "rollback" else "block"
        )
        return dataclasses.replace(decision, decision=verdict, gates=gates, warnings=warnings,
                                   reasons=[*decision.reasons, reason]), verdict == "block"  # fmt: skip

    def _gate(self, result: WatchResult) -> GateRecord:
        s, c = result.settings, result.counts
        outcome = "passed" if result.decision == "promote" else (
            "failed" if result.decision == "rollback" else "error"
        )  # fmt: skip
        return GateRecord(
            id=f"{result.environment}::watch", name=f"{result.environment}::watch", outcome=outcome,
            measured=f"{result.measured} of {s.measurements} measurements, {c['failed']} failed, "
                     f"{c['error'] + c['inconclusive']} without data",
            threshold=f"failed <= {s.failure_limit}, errors in a row <= "
                      f"{s.consecutive_error_limit}",
            message=result.reason, rollback_trigger=result.decision == "rollback",
        )  # fmt: skip

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        if not self._said and self.config.pluginmanager.hasplugin("dsession"):
            reporter.write_line("")  # xdist's progress line ends without one
        self._said = True
        reporter.write_line(line)

    # -- reports -----------------------------------------------------------------------
    def pytest_promotion_decision(self, config: pytest.Config, decision: Decision) -> None:
        if self.result is None:
            return
        from _pytest.junitxml import xml_key  # no public handle on pytest's LogXML

        xml = config.stash.get(xml_key, None)
        if xml is None:
            return
        r = self.result
        xml.add_global_property("promotion.watch.decision", r.decision)
        xml.add_global_property("promotion.watch.measured", str(r.measured))
        if r.watch_record:
            xml.add_global_property("promotion.watch.record", r.watch_record)
        if r.hold:
            xml.add_global_property("promotion.watch.hold", r.hold)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        config.pluginmanager.unregister(self)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        r = self.result
        if r is None:
            return
        where = f"watch {r.watch_record[:12]} in {r.ledger}" if r.watch_record else r.ledger
        terminalreporter.write_line(
            f"promotion watch: {r.decision} after {r.measured} measurement(s) ({where})"
        )
        if r.hold:
            terminalreporter.write_line(f"promotion watch: {r.hold}")
