"""The ledger's part in a gate run, its pytest side (the controller only; xdist workers
get the context).

It takes the environment's lease when the run starts, answers ``{previous_version}`` with
the last-known-good version, writes the run's record once the gates are decided (spooled
to ``.promotion/spool/`` when the ledger cannot take it, and then a block where the
environment uses a policy gate or ends the chain), and records an executed rollback. What
the records say, the hold that blocks a promote and the spool are :mod:`.recording`'s.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from ..config import Environment, PromotionConfig
from ..decision import Decision, GateRecord
from ..keys import RUN_KEY
from ..records import MESSAGE_KEY
from ..role import Role
from ..run import PromotionRun, run_config
from . import open_context_store
from .context import RunContext, clear, set_current
from .model import POLICY_KINDS, Record
from .settings import build_context, shown
from .switch import WORKER_KEY
from .url import LedgerError

if TYPE_CHECKING:  # the rest is imported where a ledger is on (`ledger = false` skips it)
    from .lease import Lease
    from .store import Store

__all__ = ["LedgerPlugin", "install"]


def install(config: pytest.Config, run: PromotionRun) -> None:
    """Called once from the plugin's pytest_configure, before the run's session starts
    (and before the Collector, which asks for the previous version)."""
    if hasattr(config, "workerinput"):
        data = config.workerinput.get(WORKER_KEY)
        if data:
            set_current(RunContext.from_json(data))
        return
    ledger = LedgerPlugin(config)
    context = ledger._setup(run.environment, run.promotion)
    if run.version is None and context.version is not None:
        # From git describe (with a ledger): the rollback template's start-time check, the
        # reports and the record all see it.
        run.version = context.version
    config.pluginmanager.register(ledger, "promotion-ledger")
    policy = frozenset(c.id for c in run.environment.checks if c.kind in POLICY_KINDS)
    if policy:  # a hook on every report: only where there are policy gates to read
        config.pluginmanager.register(PolicyEvidence(ledger, policy), "promotion-evidence")


class PolicyEvidence(Role):
    """A passing gate's message is not kept in its record: for a policy gate it is the
    evidence (which upstream record, when), so the ledger keeps it."""

    def __init__(self, ledger: LedgerPlugin, policy: frozenset[str]) -> None:
        self.evidence = ledger.evidence
        self.policy = policy

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" and report.nodeid in self.policy:
            for key, value in report.user_properties:
                if key == MESSAGE_KEY:
                    self.evidence[report.nodeid] = str(value)


class LedgerPlugin(Role):
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.context: RunContext | None = None
        self.environment: Environment | None = None
        self.store: Store | None = None
        self.store_error: str | None = None
        self.lease: Lease | None = None
        self.lease_block: str | None = None
        self.started_at: str | None = None
        self.record_id: str | None = None
        self.notes: list[str] = []
        self.evidence: dict[str, str] = {}  # policy gate id -> its passing message
        self.warnings: list[str] = []  # for every report (amend), e.g. a spooled record
        self.spooled: str | None = None

    # -- set-up ------------------------------------------------------------------------
    def _setup(
        self, environment: Environment, promotion: PromotionConfig | None = None
    ) -> RunContext:
        if self.context is not None:
            return self.context
        if promotion is None:
            promotion = run_config(self.config)
        opt = self.config.getoption
        try:
            self.context = build_context(
                environment=environment.name,
                chain=promotion.chain,
                config_path=promotion.path,
                rootdir=promotion.rootdir,
                options=promotion.options,
                ledger_option=opt("promotion_ledger"),
                version_option=opt("promotion_version"),
                artifact_option=opt("promotion_artifact"),
                rollback=environment.rollback,
                rollback_timeout=environment.rollback_timeout,
            )
        except LedgerError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.environment = environment
        set_current(self.context)
        return self.context

    def _store(self, retry: bool = False) -> Store:
        """The run's store, opened once; a failure is remembered (an unreachable server is
        not asked again at every step) until ``retry`` (the end of the run)."""
        if self.store is None:
            assert self.context is not None
            if self.store_error and not retry:
                raise LedgerError(self.store_error)
            try:
                self.store = open_context_store(self.context)
            except LedgerError as exc:
                self.store_error = str(exc)
                raise
        return self.store

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line, yellow=True)
        else:
            sys.stderr.write(line + "\n")

    # -- the run's start ---------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_promotion_previous_version(
        self, config: pytest.Config, environment: Environment
    ) -> tuple[str | None, str] | None:
        context = self._setup(environment)
        if context.url is None:
            return None
        try:
            store = self._store()
            from .queries import last_known_good_in

            good = last_known_good_in(store, environment.name, exclude=context.version)
        except LedgerError as exc:
            return None, f"{exc}: no last-known-good version"
        if good is None:
            return None, f"ledger {store.shown}: first promotion of {environment.name}"
        return good.version, f"ledger {store.shown} (record {good.id[:8]})"

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        run = self.config.stash.get(RUN_KEY, None)
        if run is None:
            return
        context = self._setup(run.environment, run.promotion)  # made in install()
        if context.url is None:
            return
        try:
            from .lease import Lease, describe

            store = self._store()
            self.lease = Lease.for_run(store, context)
            holder = self.lease.acquire(context.lock_timeout, self._say)
            self.started_at = self.lease.info.started_at or store.now()
        except LedgerError as exc:
            self.store_error = str(exc)
            self._say(f"promotion: {exc}: running without the lease")
            self._release()  # a lease that failed to be taken is not held (taken, given back)
            return
        if holder is not None:
            self.lease_block = (
                f"{describe(holder)}: waited {context.lock_timeout:g} s (lock_timeout)"
            )
            self._say(f"promotion: {self.lease_block}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.context is not None:
            node.workerinput[WORKER_KEY] = self.context.to_json()

    # -- the record --------------------------------------------------------------------
    def _version_value(self) -> str | None:
        run = self.config.stash.get(RUN_KEY, None)
        return run.version if run is not None else None

    def _previous(self) -> str | None:
        run = self.config.stash.get(RUN_KEY, None)
        return run.previous_version if run is not None else None

    @pytest.hookimpl(wrapper=True)
    def pytest_promotion_finalize(
        self, config: pytest.Config, decision: Decision
    ) -> Generator[None, list[list[str] | None], list[list[str] | None]]:
        try:
            others = yield
        except Exception as exc:  # another implementation failed: the run blocks; record it
            self._finalize(decision, [f"a pytest_promotion_finalize hook raised {exc!r}"])
            raise
        mine = self._finalize(decision, [r for rs in others for r in rs or ()])
        return [*others, mine] if mine else others

    def amend(self, decision: Decision) -> Decision:
        """What the ledger adds to every report, as a new decision (the finalising
        pipeline's step after the finalize hook): each policy gate's evidence as its
        message, and the ledger's warnings."""
        gates = self._with_evidence(decision.gates)
        if gates is decision.gates and not self.warnings:
            return decision
        return replace(decision, gates=gates, warnings=[*decision.warnings, *self.warnings])

    def _with_evidence(self, gates: list[GateRecord]) -> list[GateRecord]:
        evidence = self.evidence
        if not any(g.id in evidence and not g.message for g in gates):
            return gates
        return [
            replace(g, message=evidence[g.id]) if g.id in evidence and not g.message else g
            for g in gates
        ]

    def _finalize(self, decision: Decision, others: list[str]) -> list[str]:
        """Write the run's record (spool it when it cannot be written): this run's own
        block reasons, if any."""
        if self.context is None or self.environment is None or self.context.url is None:
            return []
        from . import recording

        context, environment = self.context, self.environment
        mine: list[str] = []
        if decision.promote:  # a hold blocks it; a ledger that cannot say whether there is
            with contextlib.suppress(LedgerError):  # one: its own rules (record needed) block
                mine += recording.hold_reasons(self._store(), context.environment)
        if self.lease_block:
            mine.append(self.lease_block)
        lease = self._lease_state()
        if lease == "not taken" and recording.needs_record(context, environment):
            why = f" ({self.store_error})" if self.store_error else ""
            mine.append(f"{context.environment}'s lease was not taken{why}")
        reasons = list(decision.reasons) + others + mine
        verdict = "block" if decision.promote and reasons else decision.decision
        record = recording.decision_record(
            context, environment, replace(decision, gates=self._with_evidence(decision.gates)),
            verdict, reasons, started_at=self.started_at,
            lease=lease,
            version=self._version_value(), previous=self._previous(),
        )  # fmt: skip
        try:
            store = self._store(retry=True)
            store.append([record])
            self.record_id = record.id
            self.notes.append(f"promotion ledger: recorded {record.id[:12]} in {store.shown}")
            note = getattr(store, "tls_note", "")
            if note:  # sslmode=disable: said in every report
                self.warnings.append(f"ledger {store.shown}: {note}")
        except LedgerError as exc:
            mine += self._spool(record, str(exc))
        return mine

    def _lease_state(self) -> str:
        """The record's ``lease``: ``held``; ``timeout`` (another run held it past
        ``lock_timeout``); ``not taken`` (the ledger failed before it was this run's)."""
        if self.lease_block:
            return "timeout"
        return "held" if self.lease is not None and self.lease.held else "not taken"

    def _spool(self, record: Record, why: str) -> list[str]:
        """Spool a record the ledger could not take: a reason to block where the
        environment needs a record, else a warning (in :attr:`warnings`)."""
        assert self.context is not None and self.environment is not None
        from .recording import needs_record, spool_record

        path, message = spool_record(self.context, record, why)
        if path is not None:
            self.spooled = path
        if needs_record(self.context, self.environment):
            return [f"{message} ({self.context.environment} needs a record to promote)"]
        self.warnings.append(message)
        return []

    def pytest_promotion_decision(self, config: pytest.Config, decision: Decision) -> None:
        try:
            if (
                decision.rollback_result is not None
                and self.context is not None
                and self.context.url is not None  # `ledger = false`: nothing to record
            ):
                self._record_rollback(decision)
            if self.context is not None and self.context.url is not None:
                from .reports import add_junit_properties, append_github_summary

                extra = self.report_extra()
                add_junit_properties(config, extra)
                append_github_summary(os.environ, extra)
        finally:
            self._release()

    def _record_rollback(self, decision: Decision) -> None:
        assert self.context is not None
        from .recording import rollback_record

        record = rollback_record(self.context, decision, self._previous(), self.record_id)
        try:
            self._store().append([record])
        except LedgerError as exc:
            # The reports are written: said on the terminal (the record is spooled).
            told = len(self.warnings)
            for line in self._spool(record, str(exc)) + self.warnings[told:]:
                self._say(f"promotion: {line}")

    def _release(self) -> None:
        if self.lease is not None:
            # else the lease expires (SQLite) or ends with the connection (PostgreSQL)
            with contextlib.suppress(LedgerError):
                self.lease.release()
            self.lease = None

    def report_extra(self) -> dict[str, Any]:
        """The ledger's part of the JSON report: the record, where, the policy evidence."""
        store = self.store.shown if self.store is not None else None
        return {
            "url": store or (shown(self.context.url) if self.context else None),
            "record": self.record_id,
            "spooled": self.spooled,
            "version_source": self.context.version_source if self.context else None,
            "evidence": dict(self.evidence),
        }

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for note in self.notes:
            terminalreporter.write_line(note)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._release()
        if self.store is not None:
            self.store.close()
            self.store = None
        clear()
