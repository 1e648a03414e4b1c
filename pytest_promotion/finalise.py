"""The one place a decision is made final, and the one function the exit status comes from.

The pipeline, on the controller, once per run::

    decide()            pure: the fail-closed rules over the facts and gate records
    finalise()          masking, the run's warnings (waivers are applied by decide)
    finalize hook       pytest_promotion_finalize: reasons to block, never to promote
    amend               what the ledger adds for every report (policy evidence, warnings)
    watch               the post-deploy watch, when asked (docs/watch.md): promote stays,
                        or becomes rollback, or block (and then no rollback step)
    rollback            the command (hook or template), run with --promotion-rollback=execute
    reports             $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, the JSON report, JUnit properties
    decision hook       pytest_promotion_decision: told last, with the final decision
    exit_status()       derived from the final decision, nowhere else

Each step returns a new (frozen) :class:`.decision.Decision`; after ``decide`` a step can
only turn a promote into a block, never the other way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from .decision import Decision
from .outputs import Writer, write_each
from .redact import redact

__all__ = ["Pipeline", "block", "exit_status", "finalise", "hook_failed"]

# Registered only when the run watches (plugin.py): else the watch package is not imported.
WATCH_PLUGIN = "promotion-watch"


def block(decision: Decision, *reasons: str) -> Decision:
    """``decision`` with more reasons; a promote becomes a block (a rollback stays one)."""
    if not reasons:
        return decision
    verdict = "block" if decision.promote else decision.decision
    return replace(decision, decision=verdict, reasons=[*decision.reasons, *reasons])


def hook_failed(hook: str, exc: BaseException) -> str:
    """The one line that names a hook implementation that raised."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"the {hook} hook raised {type(exc).__name__}: {text}"


def finalise(
    decision: Decision, secrets: Sequence[str], warnings: Sequence[str], insecure: bool
) -> Decision:
    """Mask what the gates recorded and add the run's own warnings (first)."""
    gates = decision.gates
    reasons, run_warnings = decision.reasons, [*warnings, *decision.warnings]
    # A copy of every gate only when one may hold something to mask: a ${VAR} value, or a
    # URL with a password in a parametrized id (redact masks those without secrets too).
    if secrets or any("://" in g.id or "://" in g.name for g in gates):
        gates = [replace(g, id=redact(g.id, secrets), name=redact(g.name, secrets)) for g in gates]
    if secrets or warnings:
        reasons = [redact(r, secrets) for r in reasons]
        run_warnings = [redact(w, secrets) for w in run_warnings]
    if insecure:
        run_warnings.insert(
            0, f"TLS verification is disabled for {decision.environment} (insecure = true)"
        )
    return replace(decision, gates=gates, reasons=reasons, warnings=run_warnings)


def ask_finalize(config: pytest.Config, decision: Decision) -> Decision:
    """The pytest_promotion_finalize hook: its reasons block; a raise blocks too."""
    try:
        answers = config.hook.pytest_promotion_finalize(config=config, decision=decision)
    except Exception as exc:
        return block(decision, hook_failed("pytest_promotion_finalize", exc))
    reasons = [str(r) for answer in answers or () for r in answer or ()]
    return block(decision, *reasons)


def exit_status(decision: Decision | None, status: int) -> int:
    """The run's exit status from its final decision and the status pytest arrived at.

    No decision: the run ended before one was made, never 0. A usage error found at
    collection: 4. A promote keeps pytest's status, except that failures (all of them
    waived gates', or the run would not promote) do not fail it. Anything else is never 0.
    """
    status = int(status)
    if decision is None:
        return status or int(pytest.ExitCode.INTERNAL_ERROR)
    if decision.usage_error:
        return int(pytest.ExitCode.USAGE_ERROR)
    if decision.promote:
        return int(pytest.ExitCode.OK) if status == pytest.ExitCode.TESTS_FAILED else status
    return status or int(pytest.ExitCode.TESTS_FAILED)


class Pipeline:
    """Rollback, reports and the decision hook for one decision: each report writer on its
    own (one that fails is one line and blocks; the others still write the block)."""

    def __init__(
        self,
        config: pytest.Config,
        writers: list[Writer],
        rollback: Callable[[Decision], Decision],
        add_junit: Callable[[Decision], None],
        say: Callable[[str], None],
        amend: Callable[[Decision], Decision] = lambda decision: decision,
    ) -> None:
        self.config = config
        self.amend = amend
        self.writers = writers
        self.rollback = rollback
        self.add_junit = add_junit
        self.say = say
        self.rolled_back = False

    def run(self, decision: Decision) -> Decision:
        decision = ask_finalize(self.config, decision)
        decision = self.amend(decision)  # what the finalize step adds to every report
        if self.config.pluginmanager.has_plugin(WATCH_PLUGIN):
            from .watch.plugin import after_promote  # watch seam: a promote is watched (the
            # ledger has recorded it); it may become a rollback, or a block that never
            # rolls back

            decision, hold = after_promote(self.config, decision)
            self.rolled_back = self.rolled_back or hold
        decision = self.settle(decision)
        try:
            # Told last, so that no listener hears "promote" of a run that ends in block.
            self.config.hook.pytest_promotion_decision(config=self.config, decision=decision)
        except Exception as exc:
            line = hook_failed("pytest_promotion_decision", exc)
            self.say(f"promotion: {line}")
            decision = self.settle(block(decision, line))
        return decision

    def settle(self, decision: Decision) -> Decision:
        """Roll back (once) when the decision is not promote, then write every report; a
        report that cannot be written blocks, and the others are written again."""
        decision = self._roll_back(decision)
        # A promote stops at the first writer that fails: the JSON report (last) never
        # says "promote" while the rollback runs.
        failed = self._write(decision, stop=decision.promote)
        if failed:
            decision = block(decision, *(f"the report could not be written: {f}" for f in failed))
            decision = self._roll_back(decision)
            self._write(decision, stop=False, told=frozenset(failed))
        return decision

    def _roll_back(self, decision: Decision) -> Decision:
        if decision.promote or self.rolled_back:
            return decision
        self.rolled_back = True
        return self.rollback(decision)

    def _write(
        self, decision: Decision, stop: bool, told: frozenset[str] = frozenset()
    ) -> list[str]:
        self.add_junit(decision)
        failed = write_each(self.writers, decision, stop=stop)
        for why in failed:
            if why not in told:
                self.say(f"promotion: cannot write {why}")
        return failed
