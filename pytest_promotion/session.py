"""The hooks of one promotion run, registered only when a target environment is set.

On an xdist worker it selects gates and annotates reports; on the controller (or without
xdist) it also collects the records, decides, reports and enforces the exit status.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from .config import ConfigError, Environment, PromotionConfig, load_config
from .decision import Decision, GateRecord, RunFacts, decide
from .gate import declare_gate
from .items import EnvironmentCollector, Prefetch, prefetch_key
from .outputs import mask_properties, mask_report, mask_warning, report_writers, write_reports
from .plugin import DECISION_KEY, PLACEHOLDER_KEY, write_placeholder
from .records import message_of, update_record
from .redact import mask_subtest, redact
from .rollback import attach_rollback
from .selection import dropped_gates, narrowed_by_lf, partition

__all__ = ["PromotionSession"]


class PromotionSession:
    """State and hooks of one gate run."""

    def __init__(
        self,
        config: pytest.Config,
        promotion: PromotionConfig,
        environment: Environment,
        version: str | None,
        previous_version: str | None,
        waivers: dict[str, str],
    ) -> None:
        self.config = config
        self.promotion = promotion
        self.environment = environment
        self.version = version
        self.previous_version = previous_version
        self.is_worker = hasattr(config, "workerinput")
        self.report_path: Path | None = None
        self.records: dict[str, GateRecord] = {}
        self.facts = RunFacts(
            environment=environment.name, allow_skips=environment.allow_skips, waivers=waivers
        )
        self.deselected_other = 0
        self.leaky_ids: list[str] = []
        self.warnings: list[str] = []
        self.failed_reports = 0
        self.failed_by_id: dict[str, int] = {}  # failed reports per gate (waived ones count)
        self.collected: list[pytest.Item] = []  # every test collected, before any selection
        self.kept: list[pytest.Item] = []  # what our selection kept
        self.dropped: dict[str, None] = {}  # kept gates missing from the final items
        self.decision: Decision | None = None
        self.session: pytest.Session | None = None
        self.signal_name: str | None = None
        self._old_sigterm: Any = None
        self._finishing = False
        self._rolling_back = False  # a SIGTERM then stops the rollback command too

    # -- start -------------------------------------------------------------------------
    @classmethod
    def start(cls, config: pytest.Config, env: str) -> PromotionSession:
        is_worker = hasattr(config, "workerinput")
        report = None if is_worker else config.getoption("promotion_report")
        if report and PLACEHOLDER_KEY not in config.stash:  # else written before conftests
            write_placeholder(config, report, env)
        try:
            promotion = load_config(
                config.rootpath, config.getoption("promotion_config"), config.invocation_params.dir
            )
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        name = promotion.chain_name(env) or env
        if name not in promotion.chain:
            raise pytest.UsageError(
                f"--env {env}: unknown environment (known: {', '.join(promotion.chain)}; "
                f"from {promotion.label})"
            )
        try:
            environment = promotion.environment(name)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        waivers = dict(config.getoption("promotion_waivers") or [])
        if waivers and not environment.allow_waivers:
            raise pytest.UsageError(
                f"--waive {next(iter(waivers))}: {name} forbids waivers "
                f"(set allow_waivers = true in [environments.{name}] to permit them)"
            )
        version = config.getoption("promotion_version") or os.environ.get("PROMOTION_VERSION")
        previous = config.getoption("promotion_previous_version") or os.environ.get(
            "PROMOTION_PREVIOUS_VERSION"
        )
        if previous is None:  # ledger seam: core wires this
            answer = config.hook.pytest_promotion_previous_version(
                config=config, environment=environment
            )
            previous = answer[0] if answer else None
        self = cls(config, promotion, environment, version, previous, waivers)
        self.warnings.extend(environment.warnings)  # no config file, http:// base_url
        # --hosts exists when pytest-testinfra is installed; an explicit --hosts wins.
        if environment.hosts and "hosts" in vars(config.option) and not config.option.hosts:
            # pytest-testinfra parametrizes its `host` fixture from --hosts: one test per host.
            config.option.hosts = ",".join(environment.hosts)
        if not self.is_worker:
            if report:
                self.report_path = Path(report).resolve()
            self._install_sigterm()
        return self

    def _install_sigterm(self) -> None:
        if sys.platform == "win32":  # pragma: no cover
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            self.signal_name = "SIGTERM"
            if not self._finishing or self._rolling_back:
                raise KeyboardInterrupt("SIGTERM")

        try:
            self._old_sigterm = signal.signal(signal.SIGTERM, on_sigterm)
        except ValueError:  # not the main thread: pytest run from a thread
            self._old_sigterm = None

    # -- header and selection ----------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        chain = " -> ".join(
            f"[{n}]" if n == self.environment.name else n for n in self.promotion.chain
        )
        lines = [f"promotion: {chain} (config: {self.promotion.label})"]
        if self.version:
            lines[0] += f", version {self.version}"
        if self.environment.insecure:
            lines.append(
                f"promotion: WARNING: TLS verification is disabled for {self.environment.name} (insecure = true)"
            )
        lines += [f"promotion: WARNING: {w}" for w in self.environment.warnings]
        lines += [f"promotion: {note}" for note in self.environment.notes]
        return lines

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Any:
        # A wrapper: the selection runs before the plain implementations (-k, -m, a
        # conftest's); gates dropped in whatever order, before or after it, are found from
        # the collect reports at pytest_collection_finish.
        self._select(session, config, items)
        return (yield)

    def _select(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.environment.checks:
            collector = EnvironmentCollector.from_parent(
                session,
                name=self.environment.name,
                nodeid=self.environment.name,
                path=self.promotion.path or session.path,
                environment=self.environment,
            )
            items.extend(collector.collect())
        secrets = self.environment.secrets
        gates, unmarked, other = partition(items, self.promotion.chain, self.environment.name)
        keep = []
        for item, marks in gates:
            keep.append(item)
            nodeid = item.nodeid
            if secrets or "://" in nodeid:
                masked = redact(nodeid, secrets)
                if masked != nodeid:
                    # pytest prints and writes node ids itself: we cannot mask them there.
                    self.leaky_ids.append(masked)
            if marks.probes:
                item.stash[prefetch_key] = Prefetch(self.environment, marks.probes)
            try:
                declare_gate(item, nodeid, marks.gate.kwargs if marks.gate else None)
            except pytest.UsageError as exc:
                if not self.is_worker:
                    raise
                # A usage error kills an xdist worker with a long INTERNALERROR: there, the
                # gate fails with the same one line instead (the run blocks).
                _fails_with(item, str(exc).removeprefix(f"{nodeid}: "))
        if unmarked or other:
            config.hook.pytest_deselected(items=unmarked + other)
            items[:] = keep
        self.facts.unmarked = len(unmarked)
        if self.leaky_ids:
            self.warnings.append(
                f"{len(self.leaky_ids)} gate id(s) contain a credential, e.g. {self.leaky_ids[0]}: "
                "pytest shows ids as they are; give the parametrize ids= that hold no secret"
            )
        self.deselected_other = len(other)
        self.kept = keep

    def pytest_report_collectionfinish(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> list[str]:
        line = f"promotion: {len(items)} gates selected for {self.environment.name}"
        if self.deselected_other:
            line += f", {self.deselected_other} deselected (other environments)"
        if self.facts.unmarked:
            line += f", {self.facts.unmarked} deselected (no environment marker: not a gate)"
        return [line]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # trylast: a run a conftest's sessionstart ends is plugin.pytest_cmdline_main's.
        self.session = session

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # An xdist controller ("dsession") collects nothing: its workers report their ids.
        if not self.config.pluginmanager.hasplugin("dsession"):
            items = session.items
            chain, target = self.promotion.chain, self.environment.name
            dropped = dropped_gates(self.collected, self.kept, items, chain, target)
            if dropped:
                if self.is_worker:  # the controller reads it in pytest_testnodedown
                    self.config.workeroutput["promotion_dropped"] = dropped  # type: ignore[attr-defined]
                self.dropped.update(dict.fromkeys(dropped))
            narrowed = narrowed_by_lf(self.config)
            if narrowed:
                self.facts.narrowed = narrowed
                if self.is_worker:
                    self.config.workeroutput["promotion_narrowed"] = narrowed  # type: ignore[attr-defined]
            self.facts.selected = [item.nodeid for item in items]
            self.facts.collected = True

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.facts.collected:
            self.facts.selected = list(ids)
            self.facts.collected = True

    # -- records -----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Called three times per gate: attribute reads, not the report's properties.
        outcome = report.outcome
        if "context" in report.__dict__:  # a subtest: its msg and arguments are shown
            mask_subtest(report, self.environment.secrets)
        if report.sections or outcome != "passed" or "wasxfail" in report.__dict__:
            # Before any reporter, JUnit file or xdist controller sees it (tryfirst; on a
            # worker before the report is sent): a traceback, a skip reason or captured
            # output may show a URL with a password or a ${VAR} value.
            mask_report(report, self.environment.secrets)
        mask_properties(report, self.environment.secrets)  # also URL passwords, escapes
        if self.is_worker:
            return
        update_record(self.records, report, self.environment.secrets)
        if outcome == "failed" and not hasattr(report, "wasxfail"):
            self.failed_reports += 1
            self.failed_by_id[report.nodeid] = self.failed_by_id.get(report.nodeid, 0) + 1

    @pytest.hookimpl(tryfirst=True)  # masked before the terminal, JUnit or xdist see it
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.passed:  # what it collected, before any hook can drop a gate unseen
            self.collected.extend(x for x in report.result if isinstance(x, pytest.Item))
            return
        mask_report(report, self.environment.secrets)
        if self.is_worker:
            return
        if report.failed:
            self.failed_reports += 1
            self.facts.collection_errors.append(
                redact(f"{report.nodeid or '.'}: {message_of(report)}", self.environment.secrets)
            )
        else:  # pytest.skip(allow_module_level=True), pytest.importorskip: its gates vanish
            self.facts.skipped_modules.append((report.nodeid or ".", message_of(report)))

    @pytest.hookimpl(tryfirst=True)  # before the warnings summary and JUnit record it
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        mask_warning(warning_message, self.environment.secrets)

    def pytest_internalerror(self, excrepr: Any) -> None:
        lines = str(excrepr).strip().splitlines()
        self.facts.internal_errors.append(
            redact(lines[-1] if lines else "internal error", self.environment.secrets)
        )

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # Also called for -x / --maxfail, a collection error (pytest's Session.Interrupted
        # subclasses KeyboardInterrupt) and pytest.exit: those are not Ctrl-C.
        exc = excinfo.value
        if self.signal_name is None and isinstance(
            exc, (pytest.Session.Interrupted, pytest.exit.Exception)
        ):
            how = "pytest.exit: " if isinstance(exc, pytest.exit.Exception) else ""
            message = redact(str(getattr(exc, "msg", "") or exc), self.environment.secrets)
            if isinstance(exc, pytest.exit.Exception):  # pytest prints it: masked in place
                exc.msg, exc.args = message, (message,)
            self.facts.stopped = f"{how}{message}"
        else:
            self.facts.interrupted = self.signal_name or "KeyboardInterrupt"

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.dropped.update(dict.fromkeys(output.get("promotion_dropped", ())))
        self.facts.narrowed = output.get("promotion_narrowed") or self.facts.narrowed
        if error is not None:
            self.facts.crashed_workers.append(
                str(getattr(getattr(node, "gateway", None), "id", node))
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        self.records.setdefault(crashitem, GateRecord(id=crashitem, name=crashitem)).crashed = True

    # -- the end -----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        self._finishing = True
        self.facts.dropped = list(self.dropped)
        if self.signal_name and not self.facts.interrupted:
            self.facts.interrupted = self.signal_name
        # Failures pytest counted that no report of ours explains (another plugin's verdict).
        self.facts.foreign_failures = max(0, session.testsfailed - self.failed_reports)
        decision = decide(self.facts, self.records, self.version)
        waived_failures = (  # failed reports (call, setup, teardown) of waived gates
            sum(self.failed_by_id.get(g.id, 0) for g in decision.gates if g.waiver)
            if self.facts.waivers  # only decide() sets a waiver, from --waive
            else 0
        )
        decision.warnings[:0] = self.warnings
        if self.environment.secrets or self.leaky_ids:
            mask = self.environment.secrets
            for gate in decision.gates:
                gate.id, gate.name = redact(gate.id, mask), redact(gate.name, mask)
            decision.reasons = [redact(r, mask) for r in decision.reasons]
            decision.warnings = [redact(w, mask) for w in decision.warnings]
        if self.environment.insecure:
            decision.warnings.insert(
                0, f"TLS verification is disabled for {decision.environment} (insecure = true)"
            )
        # ledger seam: core wires this
        for extra in self.config.hook.pytest_promotion_finalize(
            config=self.config, decision=decision
        ):
            decision.reasons += extra
            if extra and decision.promote:
                decision.decision = "block"
        from .watch.plugin import after_promote

        decision, hold = after_promote(self.config, decision)  # watch seam
        if not hold:  # a watch that could not measure never rolls back
            self._rollback(decision)
        self.decision = decision
        self._write_reports(decision)  # may turn a promote into a block
        # Told last, so that no listener hears "promote" of a run that ends in block.
        self.config.hook.pytest_promotion_decision(config=self.config, decision=decision)
        self.config.stash[DECISION_KEY] = decision  # read by plugin.pytest_cmdline_main
        if (
            decision.promote
            and session.exitstatus == pytest.ExitCode.TESTS_FAILED
            and (session.testsfailed <= waived_failures)
        ):
            session.exitstatus = pytest.ExitCode.OK  # every failure carries a waiver
        self._enforce_exit(session)

    def _rollback(self, decision: Decision) -> None:
        if decision.promote:
            return
        env = self.environment
        hooked = self.config.hook.pytest_promotion_rollback_command(
            config=self.config, environment=env, decision=decision
        )
        self._rolling_back = True  # a SIGTERM now stops the command (it kills its group)
        try:
            attach_rollback(
                decision,
                hooked=hooked,
                template=env.rollback,
                values={
                    "env": env.name,
                    "version": self.version,
                    "previous_version": self.previous_version,
                },
                secrets=env.secrets,
                execute=self.config.getoption("promotion_rollback") == "execute",
                timeout=env.rollback_timeout,
                cwd=str(self.config.rootpath),
            )
        except KeyboardInterrupt:  # a signal outside the command's own guard
            if decision.rollback_result is None:  # not after a result was recorded
                decision.rollback_result = {"error": "interrupted before the command ran"}
        finally:
            self._rolling_back = False

    def _write_reports(self, decision: Decision) -> None:
        """The GitHub files and the JSON report (outputs.write_reports: one that cannot be
        written blocks), then the JUnit suite properties."""
        from .reporting.junit import add_properties

        extra = {
            "config": self.promotion.label,
            "selection": {
                "selected": len(self.facts.selected),
                "deselected_other_environments": self.deselected_other,
                "deselected_unmarked": self.facts.unmarked,
            },
        }
        ledger = self.config.pluginmanager.get_plugin("promotion-ledger")
        if ledger is not None:  # ledger seam: core wires this
            extra["ledger"] = ledger.report_extra()
        writers = report_writers(self.report_path, extra, os.environ)
        write_reports(writers, decision, on_block=self._rollback, say=self._say)
        add_properties(self.config, decision, self.environment.secrets)

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line, red=True, bold=True)
        else:
            sys.stderr.write(line + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.decision is None:
            return
        from .reporting.terminal import write_summary

        write_summary(terminalreporter, self.decision, verbose=self.config.get_verbosity() > 0)
        if self.report_path is not None:
            terminalreporter.write_line(f"promotion report: {self.report_path}")

    def _enforce_exit(self, session: pytest.Session) -> None:
        if self.decision is not None and not self.decision.promote and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def finish_unconfigure(self) -> None:
        """Last word on the exit status (after every sessionfinish hook), then clean up."""
        if self.session is not None and not self.is_worker:
            if self.decision is None:
                # sessionfinish never ran for us (usage error after configure, crash): fail closed
                if self.session.exitstatus == 0:
                    self.session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            else:
                self._enforce_exit(self.session)
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None


def _fails_with(item: pytest.Item, message: str) -> None:
    """Make ``item`` a gate that fails with ``message`` when it runs (one line, no trace)."""
    declare_gate(item, item.nodeid, None)

    def runtest() -> None:
        pytest.fail(message, pytrace=False)

    item.runtest = runtest  # type: ignore[method-assign]
