"""The records a gate run writes to its ledger, and what the ledger adds to block a promote.

The decision record (the gates, the reasons, the rollback command a block or rollback
would run), an executed rollback's record, a hold on the environment that blocks a
promote, and the spool for a record the ledger cannot take. The ledger's plugin
(``plugin.py``, the pytest side) imports this module only where a ledger is on: a run
with ``ledger = false`` writes nothing and never imports it.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from ..redact import redact
from ..rollback import RenderError, render
from .model import POLICY_KINDS, Record, now_text, short_time

if TYPE_CHECKING:
    from ..config import Environment
    from ..decision import Decision
    from .context import RunContext
    from .store import Store

__all__ = [
    "decision_record",
    "hold_reasons",
    "needs_record",
    "rollback_record",
    "spool_record",
]


def needs_record(context: RunContext, environment: Environment) -> bool:
    """Whether the environment promotes only with its record written: the chain's last
    environment, or one with policy gates."""
    last = context.environment == context.chain[-1]
    return last or any(c.kind in POLICY_KINDS for c in environment.checks)


def decision_record(
    context: RunContext,
    environment: Environment,
    decision: Decision,
    verdict: str,
    reasons: list[str],
    *,
    started_at: str | None,
    lease: str,
    version: str | None,
    previous: str | None,
) -> Record:
    """The run's record of its decision (``verdict``, with ``reasons``); ``version`` and
    ``previous`` are the run's, for the rollback command of a run that does not promote."""
    ctx = context
    policy = {c.id for c in environment.checks if c.kind in POLICY_KINDS}
    gates = [{**g.to_json(), "policy": g.id in policy} for g in decision.gates]
    rollback = (
        None if verdict == "promote" else _rollback_command(ctx, environment, version, previous)
    )
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
            "started_at": started_at,
            "reasons": reasons,
            "warnings": list(decision.warnings),
            "gates": gates,
            "waivers": decision.waivers,
            "previous_version": previous,
            "rollback_command": rollback,
            "lease": lease,
        },
    )


def _rollback_command(
    context: RunContext, environment: Environment, version: str | None, previous: str | None
) -> str | None:
    """The environment's template rendered for this run (a rollback_command hook may
    still replace it; an executed rollback is recorded with its real argv)."""
    if environment.rollback is None:
        return None
    values = {"env": context.environment, "version": version, "previous_version": previous}
    try:
        argv = render(environment.rollback, values)
    except RenderError as exc:
        return f"(cannot be rendered: {exc})"
    return redact(shlex.join(argv), environment.secrets)


def rollback_record(
    context: RunContext, decision: Decision, previous: str | None, decision_record: str | None
) -> Record:
    """The record of the rollback this run executed (``decision.rollback_result``), back to
    ``previous``; ``decision_record`` is the id of the run's decision record, if written."""
    result = decision.rollback_result or {}
    ok = result.get("returncode") == 0 and not result.get("error")
    return Record(
        kind="rollback",
        environment=context.environment,
        version=context.version,
        digest=context.digest,
        decision="done" if ok else "failed",
        actor=context.actor,
        body={"to_version": previous, "argv": decision.rollback_argv,
              "result": result, "decision_record": decision_record,
              "actor_source": context.actor_source, "run_url": context.run_url},
    )  # fmt: skip


def hold_reasons(store: Store, env: str) -> list[str]:
    """A hold on ``env`` (a watch's rollback or block-and-hold, not released with
    ``promotion release-hold``) as the reason that blocks a promote, whether or not this
    run watches (the one place a hold is enforced in a gate run); LedgerError when the
    ledger cannot say."""
    from ..watch.journal import active_hold

    hold = active_hold(store, env)
    if hold is None:
        return []
    why = str(hold.body.get("reason", ""))[:200]
    return [
        f"{env} is on hold since {short_time(hold.recorded_at)} (record {hold.id[:12]}: "
        f"{why}): release it with `promotion release-hold --env {env} --reason ...` (an "
        "approval does not clear a hold)"
    ]


def spool_record(context: RunContext, record: Record, why: str) -> tuple[str | None, str]:
    """Spool a record the ledger could not take (``why``) to ``.promotion/spool/``: the
    spool file (None when it cannot be written either) and the message that says so."""
    record.recorded_at = now_text()
    record.body["clock"] = "local: spooled, the ledger could not be reached"
    directory = Path(context.base) / ".promotion" / "spool"
    from .spool import spool

    spooled = None
    try:
        path = spool(directory, record, why)
        spooled = str(path)
        where = f"spooled to {path}: run `promotion ledger sync` when the ledger is back"
    except OSError as exc:
        where = f"and it cannot be spooled to {directory} either ({exc.strerror})"
    message = redact(f"the ledger record was not written ({why}); {where}", context.secrets)
    return spooled, message
