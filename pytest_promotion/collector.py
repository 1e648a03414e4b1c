"""The controller's role (or the one process's, without xdist): it alone folds reports into
gate records, decides, finalises, rolls back, reports and sets the exit status.
Registered only where ``config`` has no ``workerinput`` (as pytest's junitxml does).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from .decision import NOT_RUN, PASSED, Decision, GateRecord, decide
from .finalise import Pipeline, exit_status, finalise, hook_failed
from .keys import DECISION_KEY
from .outputs import check_github_files, report_writers
from .records import add_case_facts, message_of, update_record
from .redact import redact
from .role import Role
from .run import PREVIOUS_VERSION_VAR, PromotionRun, check_version
from .session import mask_test_report

__all__ = ["Collector"]


class Collector(Role):
    """Records, decision, reports and exit status of one gate run."""

    def __init__(self, run: PromotionRun, report_path: Path | None) -> None:
        self.run = run
        self.config = run.config
        self.environment = run.environment
        self.secrets = run.environment.secrets
        self.report_path = report_path
        self.records: dict[str, GateRecord] = {}
        self.failed_reports = 0
        self.decision: Decision | None = None
        self.signal_name: str | None = None
        self._old_sigterm: Any = None
        self._finishing = False
        self._rolling_back = False  # a SIGTERM then stops the rollback command too
        self._pipeline: Pipeline | None = None
        # The node id object of the last plainly passing report, and its gate's record.
        self._last: tuple[object, GateRecord] | None = None
        # Where a report keeps its node id: pytest 9 an object (``report.nodeid`` is a
        # property that builds the string from it), before that the string.
        nodeid = getattr(pytest.TestReport, "nodeid", None)
        self._ident = "_id" if isinstance(nodeid, property) else "nodeid"
        check_github_files(os.environ)
        self.previous_version, self.no_target = self._previous_version()
        run.previous_version = self.previous_version
        self._check_template()
        self._install_sigterm()

    # -- start -------------------------------------------------------------------------
    def _previous_version(self) -> tuple[str | None, str | None]:
        """The version a rollback goes back to: the option, the variable, else the
        pytest_promotion_previous_version hook. Returns (version, no-target note)."""
        given = check_version(
            self.config.getoption("promotion_previous_version"),
            "--promotion-previous-version",
            PREVIOUS_VERSION_VAR,
        )
        if given is not None:
            return given, None
        try:
            answer = self.config.hook.pytest_promotion_previous_version(
                config=self.config, environment=self.environment
            )
        except pytest.UsageError:
            raise  # already one line a user can act on (the ledger's settings, say)
        except Exception as exc:
            raise pytest.UsageError(hook_failed("pytest_promotion_previous_version", exc)) from None
        if answer is None:
            return None, None
        version, source = answer
        if version is None:
            return (
                None,
                f"no rollback target: first promotion of {self.environment.name} ({source})",
            )
        return check_version(str(version), f"previous version from {source}:", "-"), None

    def _check_template(self) -> None:
        """Every value the rollback template needs is known at start, or the run does not
        start (a first promotion, which has nothing to roll back to, excepted)."""
        if self.environment.rollback is None:
            return
        from .rollback import template_fields

        needed = template_fields(self.environment.rollback)
        where = f"the rollback command of {self.environment.name}"
        if "version" in needed and self.run.version is None:
            raise pytest.UsageError(
                f"{where} needs {{version}}: set --promotion-version or PROMOTION_VERSION"
            )
        if "previous_version" in needed and self.previous_version is None and not self.no_target:
            raise pytest.UsageError(
                f"{where} needs {{previous_version}}: set --promotion-previous-version or "
                f"{PREVIOUS_VERSION_VAR}"
            )

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

    # -- records -----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Each report, three times per gate (one hook implementation: each one costs
        pluggy's dispatch per call), before pytest's junitxml, terminal or any other
        plugin sees it: masked, the case facts of a gate that did not pass added to its
        teardown report (:func:`add_case_facts`), folded into the gate's record.

        Most of a run's reports take the first path, in this one call (every bytecode
        here runs three times a gate): a phase that passed with nothing to mask and no
        fact to read (no captured output, no property, not a subtest, not an xfail). Its
        duration goes into the gate's record, as :func:`.records.update_record` would
        fold it. Read from the report's ``__dict__``: a report that keeps any of these
        elsewhere takes the full path. The three reports of one test share their node
        id object (pytest 9 builds ``report.nodeid`` from it at each read): the record
        of the last one is kept for the next."""
        attributes = report.__dict__
        try:  # subscripts: a method call costs more than all of these
            plain = (
                attributes["outcome"] == "passed"
                and not attributes["sections"]
                and not attributes["user_properties"]
                and "wasxfail" not in attributes
                and "context" not in attributes
            )
            duration, when = attributes["duration"], attributes["when"]
            ident = attributes[self._ident]
        except KeyError:
            plain = False
        if plain:
            last = self._last
            if last is not None and ident is last[0]:
                record: GateRecord | None = last[1]
            else:
                record = self._plain(report)
            if record is not None and (
                when != "teardown" or (record.outcome == PASSED and not record.xfail)
            ):
                record.duration += duration
                if when == "call" and record.outcome == NOT_RUN:
                    record.outcome = PASSED
                return
        self._fold(report)

    def _plain(self, report: pytest.TestReport) -> GateRecord | None:
        """The record of a plainly passing report's gate, made at its setup report (None:
        a later phase of a gate without one, for the full path)."""
        nodeid = report.nodeid
        record = self.records.get(nodeid)
        if record is None:
            if report.when != "setup":
                return None
            record = self.records[nodeid] = GateRecord(nodeid, nodeid)
        ident = report.__dict__.get(self._ident)
        self._last = (ident, record) if ident is not None else None
        return record

    def _fold(self, report: pytest.TestReport) -> None:
        """The full path: mask, add the case facts, fold (:func:`.records.update_record`)."""
        secrets = self.secrets
        mask_test_report(report, secrets)
        if report.when == "teardown":
            add_case_facts(self.records, report, secrets)
        update_record(self.records, report, secrets)
        if report.outcome == "failed" and not hasattr(report, "wasxfail"):
            self.failed_reports += 1

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        facts = self.run.facts
        if report.passed:
            return
        if report.failed:
            self.failed_reports += 1
            facts.collection_errors.append(
                redact(f"{report.nodeid or '.'}: {message_of(report)}", self.environment.secrets)
            )
        else:  # pytest.skip(allow_module_level=True), pytest.importorskip: its gates vanish
            facts.skipped_modules.append((report.nodeid or ".", message_of(report)))

    def pytest_internalerror(self, excrepr: Any) -> None:
        lines = str(excrepr).strip().splitlines()
        self.run.facts.internal_errors.append(
            redact(lines[-1] if lines else "internal error", self.environment.secrets)
        )

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # Also called for -x / --maxfail, a collection error (pytest's Session.Interrupted
        # subclasses KeyboardInterrupt) and pytest.exit: those are not Ctrl-C.
        exc = excinfo.value
        facts = self.run.facts
        if self.signal_name is None and isinstance(
            exc, (pytest.Session.Interrupted, pytest.exit.Exception)
        ):
            how = "pytest.exit: " if isinstance(exc, pytest.exit.Exception) else ""
            message = redact(str(getattr(exc, "msg", "") or exc), self.environment.secrets)
            if isinstance(exc, pytest.exit.Exception):  # pytest prints it: masked in place
                exc.msg, exc.args = message, (message,)
            facts.stopped = f"{how}{message}"
        else:
            facts.interrupted = self.signal_name or "KeyboardInterrupt"

    # -- the end -----------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        """Decide as soon as the gates have run, before pytest_sessionfinish (pytest-cov's
        pattern), so that every sessionfinish implementation is handed the exit status
        of the decision (a conftest's ``os._exit(exitstatus)`` included). A loop that
        raises (Ctrl-C, -x) is decided at sessionfinish instead."""
        result = yield
        decision = self.conclude(session)
        self._fail_or_pass(session, decision)
        return result

    def _fail_or_pass(self, session: pytest.Session, decision: Decision) -> None:
        """pytest derives its status from these counters after the loop: set them so that
        it arrives at :func:`.finalise.exit_status`."""
        if decision.usage_error:
            raise pytest.UsageError("; ".join(self.run.facts.usage_errors))
        pytest_status = (
            pytest.ExitCode.TESTS_FAILED
            if session.testsfailed
            else pytest.ExitCode.NO_TESTS_COLLECTED
            if session.testscollected == 0
            else pytest.ExitCode.OK
        )
        status = exit_status(decision, pytest_status)
        if status == pytest.ExitCode.OK:
            session.testsfailed = 0  # every failure carries a waiver
        elif status == pytest.ExitCode.TESTS_FAILED and not session.testsfailed:
            session.testsfailed = 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.conclude(session)  # once: a loop that ended normally has concluded already

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # An internal error before the session finished (a conftest's sessionstart that
        # raised): decide and say so in every report, the terminal included.
        if self.decision is None and self.run.facts.internal_errors:
            self.conclude(None)
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                self.pytest_terminal_summary(reporter)
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def conclude(self, session: pytest.Session | None) -> Decision:
        """Decide and finalise, once (see :mod:`.finalise` for the pipeline)."""
        if self.decision is not None:
            return self.decision
        self._finishing = True
        facts, counts = self.run.facts, self.run.counts
        if self.signal_name and not facts.interrupted:
            facts.interrupted = self.signal_name
        if session is not None:
            # Failures pytest counted that no report of ours explains (another plugin's verdict).
            facts.foreign_failures = max(0, session.testsfailed - self.failed_reports)
        decision = decide(facts, self.records, self.run.version)
        warnings = list(self.environment.warnings)  # no config file, an http:// base_url
        if counts.leaky_ids:
            warnings.append(
                f"{len(counts.leaky_ids)} gate id(s) contain a credential, e.g. "
                f"{counts.leaky_ids[0]}: pytest shows ids as they are; give the parametrize "
                "ids= that hold no secret"
            )
        if self.no_target and not decision.promote:
            warnings.append(self.no_target)
        decision = finalise(decision, self.environment.secrets, warnings, self.environment.insecure)
        if self._pipeline is None:  # one: a rollback runs once, even if a step raised
            self._pipeline = Pipeline(
                self.config, self._writers(), self._rollback, self._junit, self._say, self._amend
            )
        self.decision = self._pipeline.run(decision)
        self.config.stash[DECISION_KEY] = self.decision
        return self.decision

    def _amend(self, decision: Decision) -> Decision:
        ledger = self.config.pluginmanager.get_plugin("promotion-ledger")
        return decision if ledger is None else ledger.amend(decision)

    def _rollback(self, decision: Decision) -> Decision:
        env = self.environment
        try:
            hooked = self.config.hook.pytest_promotion_rollback_command(
                config=self.config, environment=env, decision=decision
            )
        except Exception as exc:
            line = hook_failed("pytest_promotion_rollback_command", exc)
            self._say(f"promotion: {line}")
            decision = replace(decision, reasons=[*decision.reasons, line])
            hooked = None  # the configured template, if any
        if hooked is None and env.rollback is None:
            return decision  # no command to show or run
        from .rollback import attach_rollback

        self._rolling_back = True  # a SIGTERM now stops the command (it kills its group)
        try:
            return attach_rollback(
                decision,
                hooked=hooked,
                template=env.rollback,
                values={
                    "env": env.name,
                    "version": self.run.version,
                    "previous_version": self.previous_version,
                },
                secrets=env.secrets,
                execute=self.config.getoption("promotion_rollback") == "execute",
                timeout=env.rollback_timeout,
                cwd=str(self.config.rootpath),
                no_target=self.no_target,
            )
        except KeyboardInterrupt:  # a signal outside the command's own guard
            return replace(
                decision, rollback_result={"error": "interrupted before the command ran"}
            )
        finally:
            self._rolling_back = False

    def _writers(self) -> list[Any]:
        return report_writers(self.report_path, self._report_extra, os.environ)

    def _report_extra(self) -> dict[str, Any]:
        """The JSON report's keys beside the decision's, as they are when it is written
        (the ledger's record id is known only once the finalize hook has run)."""
        facts, counts = self.run.facts, self.run.counts
        extra: dict[str, Any] = {
            "config": self.run.promotion.label,
            "selection": {
                "selected": len(facts.selected),
                "deselected_other_environments": counts.deselected_other,
                "deselected_unmarked": facts.unmarked,
            },
        }
        ledger = self.config.pluginmanager.get_plugin("promotion-ledger")
        if ledger is not None:
            extra["ledger"] = ledger.report_extra()
        else:  # the ledger is off and nothing reads it: the plugin was not installed
            from .ledger.switch import report_when_off

            version_option = self.config.getoption("promotion_version", None)
            extra["ledger"] = report_when_off(version_option, os.environ)
        return extra

    def _junit(self, decision: Decision) -> None:
        from .reporting.junit import add_properties

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

        if self.config.pluginmanager.hasplugin("dsession"):
            # The workers selected: their header line never reached this terminal.
            terminalreporter.write_line(self.run.selection_line(len(self.run.facts.selected)))
        write_summary(terminalreporter, self.decision, verbose=self.config.get_verbosity() > 0)
        if self.report_path is not None:
            terminalreporter.write_line(f"promotion report: {self.report_path}")
