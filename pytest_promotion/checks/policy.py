"""The ledger's policy kinds: gates that judge the release's history, not the target.

    [[environments.prod.checks]]
    requires_previous = true        # or "all", or ["staging", "perf"]
    soak = "24h"

    [[environments.prod.checks]]
    approvals = 2                   # or approval = true; approval_expiry = "72h"

    same_artifact = true | version_pattern = "semver" | no_downgrade = true
    rollback_ready = true (+ rollback_check = ["deploy", "--dry-run", "{previous_version}"])

A failure blocks, never rolls back. The run's version, artifact, actor and ledger come
from the ledger's run context (:mod:`pytest_promotion.ledger.context`); without it, or
with a ledger that cannot be read, every gate that needs the ledger fails.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from typing import Any

from ..ledger import context as run_context
from ..ledger import open_context_store, policy, queries
from ..ledger.identity import parse_duration
from ..ledger.model import Record, parse_time
from ..ledger.store import LedgerError, Store
from .base import CheckConfigError, Outcome, Target

__all__ = ["KEYS", "ROLLBACK", "run", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "requires_previous": (bool, str, list),
    "soak": (str, int, float),
    "allow_watching": bool,  # count a promote whose watch still runs (docs/watch.md)
    "approval": bool,
    "approvals": int,
    "approval_expiry": (str, int, float),
    "self_approval": bool,
    "approval_from_env": str,
    "same_artifact": bool,
    "version_pattern": str,
    "no_downgrade": bool,
    "rollback_ready": bool,
    "rollback_check": (str, list),
}
ROLLBACK = False  # a policy failure is a block
CONCURRENT = False
_OWN = {
    "requires_previous": {"soak", "allow_watching"},
    "approval": {"approval_expiry", "self_approval", "approval_from_env"},
    "approvals": {"approval_expiry", "self_approval", "approval_from_env"},
    "rollback_ready": {"rollback_check"},
}
DEFAULT_EXPIRY = 72 * 3600.0


def _kind(spec: Mapping[str, Any]) -> str:
    kinds = [k for k in spec if k in policy_kinds()]
    return kinds[0] if kinds else ""


def policy_kinds() -> tuple[str, ...]:
    from ..ledger.model import POLICY_KINDS

    return POLICY_KINDS


def validate(spec: Mapping[str, Any], where: str) -> None:
    kind = _kind(spec)
    if spec.get("trigger") == "rollback":
        raise CheckConfigError(
            f"{where}: key 'trigger': a {kind} check blocks, it never rolls back "
            '(remove trigger = "rollback")'
        )
    if {"approval", "approvals"} <= set(spec):
        raise CheckConfigError(f"{where}: give approval = true or approvals = N, not both")
    foreign = set().union(*_OWN.values()) - _OWN.get(kind, set())
    for key in sorted(foreign & set(spec)):
        raise CheckConfigError(f"{where}: key {key!r} does not apply to {kind} checks")
    _validate_value(kind, spec.get(kind), where)
    for key in ("soak", "approval_expiry"):
        if key in spec:
            try:
                parse_duration(spec[key], f"{where}: key {key!r}")
            except ValueError as exc:
                raise CheckConfigError(str(exc)) from None


def _validate_value(kind: str, value: Any, where: str) -> None:
    """The kind key's own value: true, or what that kind takes instead."""
    if kind == "requires_previous":
        names = isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
        if not (value is True or value == "all" or names):
            raise CheckConfigError(
                f"{where}: key 'requires_previous': expected true, \"all\" or a list of "
                f"environments, found {value!r}"
            )
    elif kind == "approvals":
        if not (isinstance(value, int) and value >= 1):
            raise CheckConfigError(
                f"{where}: key 'approvals': expected an integer >= 1, found {value!r}"
            )
    elif kind == "version_pattern":
        if value != "semver":
            try:
                re.compile(str(value))
            except re.error as exc:
                raise CheckConfigError(
                    f"{where}: key 'version_pattern': expected \"semver\" or a regular "
                    f"expression, found {value!r} ({exc})"
                ) from None
    elif value is not True:
        raise CheckConfigError(f"{where}: key {kind!r}: expected true, found {value!r}")


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    kind = _kind(spec)
    ctx = run_context.current(target.env)
    if ctx is None or ctx.url is None:
        why = "the ledger is off (ledger = false)" if ctx else "this run has no ledger context"
        return Outcome(False, f"{kind}: {why}: a policy gate cannot pass without its ledger")
    if ctx.version is None:
        return Outcome(False, f"{kind}: no version given: pass --promotion-version")
    if kind == "version_pattern":
        return _outcome(policy.version_pattern(ctx.version, str(spec[kind])))
    try:
        store = open_context_store(ctx, timeout=target.timeout)
    except LedgerError as exc:
        return Outcome(False, f"{kind}: {exc}: a policy gate never passes without its ledger")
    try:
        return _judge(kind, spec, ctx, store)
    except LedgerError as exc:
        return Outcome(False, f"{kind}: {exc}: a policy gate never passes without its ledger")
    finally:
        store.close()


def _upstream(value: Any, ctx: run_context.RunContext) -> list[str] | str:
    position = ctx.chain.index(ctx.environment) if ctx.environment in ctx.chain else 0
    if isinstance(value, list):
        unknown = [v for v in value if v not in ctx.chain[:position]]
        if unknown:
            return (
                f"requires_previous: {unknown[0]} is not an environment before "
                f"{ctx.environment} in the chain {list(ctx.chain)}"
            )
        return list(value)
    if position == 0:
        return (
            f"requires_previous: {ctx.environment} is the first environment of the chain: "
            "nothing precedes it"
        )
    return list(ctx.chain[:position]) if value == "all" else [ctx.chain[position - 1]]


def _judge(
    kind: str, spec: Mapping[str, Any], ctx: run_context.RunContext, store: Store
) -> Outcome:
    version = str(ctx.version)
    now = parse_time(store.now())
    if kind == "requires_previous" or kind == "same_artifact":
        envs = _upstream(spec[kind] if kind == "requires_previous" else True, ctx)
        if isinstance(envs, str):
            return Outcome(False, envs)
        records = store.query(environments=[*envs, "*"], version=version)
        if kind == "same_artifact":
            return _outcome(policy.same_artifact(records, envs[-1], version, ctx.digest))
        soak = parse_duration(spec["soak"], "soak") if "soak" in spec else None
        verdict = policy.requires_previous(records, envs, version, ctx.digest, now, soak)
        if not spec.get("allow_watching"):
            from ..watch.upstream import while_watched  # watch seam: a watch still running

            verdict = while_watched(verdict, records, now)
        return _outcome(verdict)
    if kind in ("approval", "approvals"):
        source = spec.get("approval_from_env")
        ci = (os.environ[source], source) if source and os.environ.get(source) else None
        records = store.query(environments=[ctx.environment], version=version)
        return _outcome(policy.approval(
            records, ctx.environment, version, ctx.digest,
            needed=int(spec["approvals"]) if kind == "approvals" else 1,
            expiry=parse_duration(spec.get("approval_expiry", DEFAULT_EXPIRY), "approval_expiry"),
            actor=ctx.actor, self_ok=bool(spec.get("self_approval", False)), now=now, ci_approver=ci,
        ))  # fmt: skip
    if kind == "no_downgrade":
        _, record = queries.current_in(store, ctx.environment)
        return _outcome(policy.no_downgrade([record] if record else [], ctx.environment, version))
    good = queries.last_known_good_in(store, ctx.environment, exclude=ctx.version)
    return _rollback_ready(spec, ctx, good)


def _rollback_ready(
    spec: Mapping[str, Any], ctx: run_context.RunContext, good: Record | None
) -> Outcome:
    from ..rollback import RenderError, render, run_rollback

    if good is None or good.version is None:
        return Outcome(False, f"no last-known-good version in {ctx.environment} to roll back to")
    values = {"env": ctx.environment, "version": ctx.version, "previous_version": good.version}
    if ctx.rollback is None:
        return Outcome(False, f"{ctx.environment} has no rollback command (key 'rollback')")
    try:
        argv = render(ctx.rollback, values)
        check = spec.get("rollback_check")
        check_argv = (
            render(shlex.split(check) if isinstance(check, str) else check, values)
            if check
            else None
        )
    except RenderError as exc:
        return Outcome(False, f"the rollback command does not render: {exc}")
    message = f"rollback to {good.version} (record {good.id[:8]}) renders: {' '.join(argv)}"
    if check_argv:
        result = run_rollback(check_argv, ctx.rollback_timeout)
        if result.returncode != 0 or result.error:
            lines = result.output.strip().splitlines()
            tail = result.error or (lines[-1] if lines else "")
            return Outcome(
                False,
                f"rollback_check {check_argv[0]} failed (exit {result.returncode}): {tail}",
            )
        message += f"; rollback_check {check_argv[0]} exited 0"
    return Outcome(True, message, measured=good.version)


def _outcome(verdict: policy.Verdict) -> Outcome:
    return Outcome(
        verdict.passed,
        verdict.message,
        measured=verdict.measured,
        threshold=verdict.threshold,
        rollback=False,
        details={"evidence": verdict.evidence} if verdict.evidence else {},
    )
