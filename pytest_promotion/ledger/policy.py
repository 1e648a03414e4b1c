"""The policy rules as pure functions over ledger records (no store, no clock of their
own: ``now`` is the ledger's). Each returns a :class:`Verdict` whose message is a sentence
a release manager understands, with the evidence (record id and time) it used."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .model import Record, hours, short_time

__all__ = [
    "SEMVER",
    "Verdict",
    "approval",
    "current",
    "invalidation",
    "last_known_good",
    "no_downgrade",
    "requires_previous",
    "same_artifact",
    "semver_key",
    "version_pattern",
]

SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


@dataclass
class Verdict:
    passed: bool
    message: str
    measured: str | None = None
    threshold: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def _ordered(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.recorded_at or "", r.seq))


def _short(record: Record) -> str:
    return f"record {record.id[:8]}"


def invalidation(records: Iterable[Record], env: str, version: str) -> Record | None:
    """The invalidation of ``version`` that applies to ``env`` (or to every environment)."""
    for r in records:
        if r.kind == "invalidation" and r.version == version and r.environment in (env, "*"):
            return r
    return None


def _standing(
    records: Sequence[Record], env: str, version: str, digest: str | None
) -> tuple[list[Record], Record | None]:
    """(promotes of ``version`` in ``env`` after its last failure there, that failure)."""
    mine = [r for r in _ordered(records) if r.environment == env and r.version == version]
    last_failure = None
    promotes: list[Record] = []
    for r in mine:
        if r.body.get("against"):
            last_failure, promotes = r, []
        elif (
            r.kind == "decision"
            and r.decision == "promote"
            and (digest is None or r.digest == digest)
        ):
            promotes.append(r)
    return promotes, last_failure


def _no_promote(records: Sequence[Record], env: str, version: str, digest: str | None) -> str:
    mine = [
        r for r in _ordered(records)
        if r.environment == env and r.version == version and r.kind == "decision"
    ]  # fmt: skip
    if not mine:
        return f"{version} has no promote in {env}: no {env} decision recorded for it"
    last = mine[-1]
    if digest is not None and any(r.decision == "promote" for r in mine):
        other = next(r.digest for r in reversed(mine) if r.decision == "promote")
        return (
            f"{version} has no promote in {env} of artifact {digest}; "
            f"{env} promoted it with {other or 'no artifact digest'}"
        )
    why = last.body.get("summary") or "; ".join(last.body.get("reasons", [])[:1])
    text = (
        f"{version} has no promote in {env} that still stands; the last {env} decision for it "
        f"was {last.decision} at {short_time(last.recorded_at)}"
    )
    return text + (f" ({why})" if why else "")


def requires_previous(
    records: Sequence[Record],
    upstream: Sequence[str],
    version: str,
    digest: str | None,
    now: datetime,
    soak: float | None = None,
) -> Verdict:
    """A promote of ``version`` (and ``digest``) in each upstream environment that still
    stands (no later failed gate there, no invalidation) and, with ``soak`` seconds, that
    has stood at least that long: the soak starts at the first promote after the last
    failure, so a block in between resets it, and a newer version replacing it does not."""
    passed, evidence, shortest = [], {}, None
    for env in upstream:
        gone = invalidation(records, env, version)
        if gone is not None:
            where = "everywhere" if gone.environment == "*" else f"in {env}"
            return Verdict(False, (
                f"{version} was invalidated {where} at {short_time(gone.recorded_at)} by "
                f"{gone.actor}: {gone.body.get('reason', '')}".rstrip(": ")
            ), evidence={"record": gone.id})  # fmt: skip
        promotes, _ = _standing(records, env, version, digest)
        if not promotes:
            return Verdict(False, _no_promote(records, env, version, digest))
        start = promotes[0]
        soaked = now - start.when
        evidence[env] = {"record": start.id, "at": start.recorded_at}
        shortest = soaked if shortest is None else min(shortest, soaked)
        if soak is not None and soaked.total_seconds() < soak:
            left = timedelta(seconds=soak) - soaked
            return Verdict(False, (
                f"{version} has soaked {hours(soaked)} of {hours(timedelta(seconds=soak))} in "
                f"{env} (promoted {short_time(start.recorded_at)}, {_short(start)}): "
                f"{hours(left)} remaining"
            ), measured=hours(soaked), threshold=f">= {hours(timedelta(seconds=soak))}",
                evidence=evidence)  # fmt: skip
        passed.append(f"promoted in {env} at {short_time(start.recorded_at)} ({_short(start)})")
    text = f"{version} " + "; ".join(passed)
    measured = None
    if soak is not None and shortest is not None:
        text += f"; soaked {hours(shortest)} of {hours(timedelta(seconds=soak))}"
        measured = hours(shortest)
    threshold = f">= {hours(timedelta(seconds=soak))}" if soak is not None else None
    return Verdict(True, text, measured=measured, threshold=threshold, evidence=evidence)


def same_artifact(records: Sequence[Record], env: str, version: str, digest: str | None) -> Verdict:
    if digest is None:
        return Verdict(False, "no artifact digest given: pass --promotion-artifact")
    promotes, _ = _standing(records, env, version, None)
    if not promotes:
        return Verdict(False, _no_promote(records, env, version, None))
    last = promotes[-1]
    if last.digest != digest:
        return Verdict(False, (
            f"artifact {digest} is not the one promoted in {env}: {version} was promoted there "
            f"with {last.digest or 'no digest'} at {short_time(last.recorded_at)} ({_short(last)})"
        ))  # fmt: skip
    return Verdict(True, f"artifact {digest} is the one promoted in {env} ({_short(last)})",
                   evidence={env: {"record": last.id, "at": last.recorded_at}})  # fmt: skip


def _valid_approvals(
    records: Sequence[Record], env: str, version: str, digest: str | None,
    expiry: float, actor: str, self_ok: bool, now: datetime,
) -> tuple[dict[str, Record], list[str], Record | None]:  # fmt: skip
    mine = [
        r for r in _ordered(records)
        if r.environment == env and r.version == version
        and r.kind in ("approval", "reject", "revoke")
    ]  # fmt: skip
    approvers: dict[str, Record] = {}
    notes: list[str] = []
    reject: Record | None = None
    for r in mine:
        if r.kind == "revoke":
            if approvers or reject:
                notes.append(f"revoked by {r.actor} at {short_time(r.recorded_at)}")
            approvers, reject = {}, None
        elif r.kind == "reject":
            reject = r
        elif r.digest is not None and digest is not None and r.digest != digest:
            notes.append(f"approval by {r.actor} is for artifact {r.digest}")
        elif (now - r.when).total_seconds() >= expiry:
            notes.append(f"approval by {r.actor} expired ({short_time(r.recorded_at)})")
        elif r.actor == actor and not self_ok:
            notes.append(f"{r.actor} cannot approve their own promotion (self_approval = false)")
        else:
            approvers[str(r.actor)] = r
    return approvers, notes, reject


def approval(
    records: Sequence[Record], env: str, version: str, digest: str | None, *,
    needed: int, expiry: float, actor: str, self_ok: bool, now: datetime,
    ci_approver: tuple[str, str] | None = None,
) -> Verdict:  # fmt: skip
    """Approvals for (env, version, digest) by distinct identities, not expired, not
    revoked, not by the actor who promotes unless ``self_ok``; a reject refuses."""
    approvers, notes, reject = _valid_approvals(
        records, env, version, digest, expiry, actor, self_ok, now
    )
    if reject is not None:
        why = reject.body.get("reason") or ""
        return Verdict(False, (
            f"{version} was rejected for {env} by {reject.actor} at "
            f"{short_time(reject.recorded_at)}: {why}".rstrip(": ")
        ), evidence={"record": reject.id})  # fmt: skip
    names = list(approvers)
    if ci_approver is not None:
        who, source = ci_approver
        if who == actor and not self_ok:
            notes.append(f"{who} (from {source}) cannot approve their own promotion")
        elif who not in approvers:
            names.append(f"{who} (from {source})")
    evidence = {n: {"record": r.id, "at": r.recorded_at} for n, r in approvers.items()}
    measured, threshold = f"{len(names)}", f">= {needed}"
    if len(names) < needed:
        text = f"{env} approval missing for {version} ({len(names)} of {needed})"
        if notes:
            text += ": " + "; ".join(notes[-3:])
        return Verdict(False, text, measured=measured, threshold=threshold, evidence=evidence)
    return Verdict(True, f"{version} approved for {env} by {', '.join(names)}",
                   measured=measured, threshold=threshold, evidence=evidence)  # fmt: skip


def version_pattern(version: str, pattern: str) -> Verdict:
    if pattern == "semver":
        ok = SEMVER.match(version) is not None
        expected = "semver MAJOR.MINOR.PATCH[-pre]"
    else:
        ok = re.fullmatch(pattern, version) is not None
        expected = f"the pattern {pattern!r}"
    if ok:
        return Verdict(True, f"{version} matches {expected}")
    return Verdict(False, f"{version} is not a release version: expected {expected}")


def semver_key(version: str) -> tuple[Any, ...] | None:
    """A sort key in semver order (a pre-release sorts before its release), or None."""
    m = SEMVER.match(version)
    if m is None:
        return None
    pre = m[4]
    parts: tuple[Any, ...] = ((1,),)
    if pre:
        parts = ((0, *[(0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")]),)
    return (int(m[1]), int(m[2]), int(m[3]), *parts)


def current(records: Sequence[Record], env: str) -> tuple[str | None, Record | None]:
    """The version running in ``env`` as far as the ledger knows: the last promote, or the
    target of a later rollback that succeeded."""
    for r in reversed(_ordered(records)):
        if r.environment != env:
            continue
        if r.kind == "decision" and r.decision == "promote":
            return r.version, r
        if r.kind == "rollback" and r.decision == "done":
            return r.body.get("to_version"), r
    return None, None


def no_downgrade(records: Sequence[Record], env: str, version: str) -> Verdict:
    running, record = current(records, env)
    if running is None or record is None:
        return Verdict(True, f"no version promoted in {env} yet")
    new, old = semver_key(version), semver_key(running)
    if new is None or old is None:
        bad = version if new is None else running
        return Verdict(False, f"cannot order {version} and {running}: {bad} is not semver")
    if new < old:
        return Verdict(False, (
            f"{version} is lower than {running}, in {env} since "
            f"{short_time(record.recorded_at)} ({_short(record)}): no_downgrade refuses it "
            "(use promotion rollback to go back)"
        ))  # fmt: skip
    return Verdict(True, f"{version} >= {running}, in {env} since {short_time(record.recorded_at)}")


def last_known_good(
    records: Sequence[Record], env: str, exclude: str | None = None
) -> Record | None:
    """The last promote in ``env`` that was not rolled back, failed later or invalidated
    (and is not ``exclude``, the version being promoted now)."""
    ordered = [r for r in _ordered(records) if r.environment in (env, "*")]
    bad: set[str] = set()
    for r in reversed(ordered):
        if r.version is None:
            continue
        if r.body.get("against") or r.kind == "invalidation":
            bad.add(r.version)
        elif (
            r.kind == "decision" and r.decision == "promote"
            and r.version not in bad and r.version != exclude
        ):  # fmt: skip
            return r
    return None
