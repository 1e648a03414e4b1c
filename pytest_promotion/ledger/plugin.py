"""The ledger's part in a gate run (the controller only; xdist workers get the context).

It takes the environment's lease when the run starts, answers ``{previous_version}`` with
the last-known-good version, writes the run's record once the gates are decided (spooled
to ``.promotion/spool/`` when the ledger cannot take it, and then a block where the
environment uses a policy gate or ends the chain), and records an executed rollback.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config import Environment, PromotionConfig
from ..decision import Decision, GateRecord
from ..keys import RUN_KEY
from ..records import MESSAGE_KEY
from ..redact import redact
from ..rollback import RenderError, render
from ..run import PromotionRun, run_config
from . import open_context_store
from .context import RunContext, clear, set_current
from .model import POLICY_KINDS, Record, now_text, short_time
from .settings import build_context, shown
from .url import LedgerError

if TYPE_CHECKING:  # the rest is imported where a ledger is on (`ledger = false` skips it)
    from .lease import Lease
    from .store import Store

__all__ = ["LedgerPlugin", "install"]

WORKER_KEY = "promotion_ledger"


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


class PolicyEvidence:
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


class LedgerPlugin:
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
            from .lease import Lease
            from .store import LeaseInfo

            store = self._store()
            info = LeaseInfo.mine(context.environment, os.urandom(8).hex(), context.actor,
                                  context.version, context.run_url)  # fmt: skip
            reopen = (
                (lambda: open_context_store(context)) if context.url.startswith("sqlite") else None
            )
            self.lease = Lease(store, info, reopen)
            holder = self.lease.acquire(context.lock_timeout, self._say)
            self.started_at = info.started_at or store.now()
        except LedgerError as exc:
            self.store_error = str(exc)
            self._say(f"promotion: {exc}: running without the lease")
            return
        if holder is not None:
            from .lease import describe

            self.lease_block = (
                f"{describe(holder)}: waited {context.lock_timeout:g} s (lock_timeout)"
            )
            self._say(f"promotion: {self.lease_block}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.context is not None:
            node.workerinput[WORKER_KEY] = self.context.to_json()

    # -- the record --------------------------------------------------------------------
    def _needs_record(self) -> bool:
        assert self.context is not None and self.environment is not None
        last = self.context.environment == self.context.chain[-1]
        return last or any(c.kind in POLICY_KINDS for c in self.environment.checks)

    def _record(self, decision: Decision, verdict: str, reasons: list[str]) -> Record:
        assert self.context is not None and self.environment is not None
        ctx = self.context
        policy = {c.id for c in self.environment.checks if c.kind in POLICY_KINDS}
        gates = [{**g.to_json(), "policy": g.id in policy} for g in decision.gates]
        return Record(
            kind="decision",
            environment=ctx.environment,
            version=ctx.version,
            digest=ctx.digest,
            decision=verdict,
            actor=ctx.actor,
            body={
                "version_source": ctx.version_source,
                "commit": ctx.commit,
                "actor_source": ctx.actor_source,
                "run_url": ctx.run_url,
                "config_hash": ctx.config_hash,
                "started_at": self.started_at,
                "reasons": reasons,
                "warnings": list(decision.warnings),
                "gates": gates,
                "waivers": decision.waivers,
                "previous_version": self._previous(),
                "rollback_command": None if verdict == "promote" else self._rollback_command(),
                "lease": "timeout" if self.lease_block else "held",
            },
        )

    def _rollback_command(self) -> str | None:
        """The environment's template rendered for this run (a rollback_command hook may
        still replace it; an executed rollback is recorded with its real argv)."""
        assert self.context is not None and self.environment is not None
        if self.environment.rollback is None:
            return None
        values = {"env": self.context.environment, "version": self._version_value(),
                  "previous_version": self._previous()}  # fmt: skip
        try:
            argv = render(self.environment.rollback, values)
        except RenderError as exc:
            return f"(cannot be rendered: {exc})"
        return redact(shlex.join(argv), self.environment.secrets)

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
        mine = self._hold(decision)
        if self.lease_block:
            mine.append(self.lease_block)
        if self.lease is None and self.store_error:
            unleased = f"{self.context.environment}'s lease was not taken ({self.store_error})"
            mine += [unleased] if self._needs_record() else []
        reasons = list(decision.reasons) + others + mine
        verdict = "block" if decision.promote and reasons else decision.decision
        record = self._record(replace(decision, gates=self._with_evidence(decision.gates)),
                              verdict, reasons)  # fmt: skip
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

    def _hold(self, decision: Decision) -> list[str]:
        """A hold on the environment (a watch's rollback or block-and-hold, not released
        with ``promotion release-hold``) blocks a promote, whether or not this run
        watches (the one place a hold is enforced in a gate run)."""
        assert self.context is not None
        if not decision.promote:
            return []
        from ..watch.journal import active_hold

        env = self.context.environment
        try:
            hold = active_hold(self._store(), env)
        except LedgerError:
            return []  # the ledger's own rules block where a record is needed
        if hold is None:
            return []
        why = str(hold.body.get("reason", ""))[:200]
        return [
            f"{env} is on hold since {short_time(hold.recorded_at)} (record {hold.id[:12]}: "
            f"{why}): release it with `promotion release-hold --env {env} --reason ...` (an "
            "approval does not clear a hold)"
        ]

    def _spool(self, record: Record, why: str) -> list[str]:
        """Spool a record the ledger could not take: a reason to block where the
        environment needs a record, else a warning (in :attr:`warnings`)."""
        assert self.context is not None
        record.recorded_at = now_text()
        record.body["clock"] = "local: spooled, the ledger could not be reached"
        directory = Path(self.context.base) / ".promotion" / "spool"
        from .spool import spool

        try:
            path = spool(directory, record, why)
            self.spooled = str(path)
            where = f"spooled to {path}: run `promotion ledger sync` when the ledger is back"
        except OSError as exc:
            where = f"and it cannot be spooled to {directory} either ({exc.strerror})"
        message = redact(
            f"the ledger record was not written ({why}); {where}", self.context.secrets
        )
        if self._needs_record():
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
        result = decision.rollback_result or {}
        ok = result.get("returncode") == 0 and not result.get("error")
        record = Record(
            kind="rollback",
            environment=self.context.environment,
            version=self.context.version,
            digest=self.context.digest,
            decision="done" if ok else "failed",
            actor=self.context.actor,
            body={"to_version": self._previous(), "argv": decision.rollback_argv,
                  "result": result, "decision_record": self.record_id,
                  "actor_source": self.context.actor_source, "run_url": self.context.run_url},
        )  # fmt: skip
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
