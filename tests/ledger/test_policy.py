"""The policy rules over records written at earlier times (no sleeping): soak, a block
that resets it, approvals bound to (environment, version, digest), downgrades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_promotion.ledger import policy
from pytest_promotion.ledger.model import Record, format_time
from pytest_promotion.ledger.store import summary_of

NOW = datetime(2026, 11, 28, 14, 2, tzinfo=UTC)


def rec(hours_ago: float, kind: str = "decision", env: str = "staging", version: str = "v1.4.0",
        decision: str | None = "promote", **body: Any) -> Record:  # fmt: skip
    r = Record(kind=kind, environment=env, version=version, decision=decision,
               actor=body.pop("actor", "ci"), digest=body.pop("digest", None),
               recorded_at=format_time(NOW - timedelta(hours=hours_ago)), body=body)  # fmt: skip
    against, summary = summary_of(r)
    r.body.update(against=bool(against), summary=summary)
    return r


def failed(hours_ago: float, **kw: Any) -> Record:
    gate = {"id": "staging::health", "outcome": "failed", "waiver": None, "policy": False}
    return rec(hours_ago, decision="rollback", gates=[gate], **kw)


def test_soak_counts_from_the_ledgers_records() -> None:
    records = [rec(26)]
    ok = policy.requires_previous(records, ["staging"], "v1.4.0", None, NOW, soak=24 * 3600)
    assert ok.passed, ok.message
    assert "soaked 26 h of 24 h" in ok.message
    short = policy.requires_previous([rec(20)], ["staging"], "v1.4.0", None, NOW, soak=24 * 3600)
    assert not short.passed
    assert "soaked 20 h of 24 h in staging" in short.message
    assert "4 h remaining" in short.message


def test_a_failure_in_between_resets_the_soak() -> None:
    records = [rec(40), failed(30), rec(10)]
    verdict = policy.requires_previous(records, ["staging"], "v1.4.0", None, NOW, soak=24 * 3600)
    assert not verdict.passed
    assert "soaked 10 h of 24 h" in verdict.message


def test_a_failure_after_the_promote_means_it_no_longer_stands() -> None:
    verdict = policy.requires_previous([rec(40), failed(2)], ["staging"], "v1.4.0", None, NOW)
    assert not verdict.passed
    assert verdict.message == (
        "v1.4.0 has no promote in staging that still stands; the last staging decision for it "
        "was rollback at 2026-11-28 12:02 (gate staging::health)"
    )


def test_errors_and_lease_timeouts_are_no_evidence_against_a_version() -> None:
    errored = rec(5, decision="block", reasons=["lease time-out"],
                  gates=[{"id": "staging::db", "outcome": "error", "policy": False}])  # fmt: skip
    policy_fail = rec(4, decision="block",
                      gates=[{"id": "staging::approval", "outcome": "failed", "policy": True}])  # fmt: skip
    verdict = policy.requires_previous([rec(30), errored, policy_fail], ["staging"], "v1.4.0",
                                       None, NOW, soak=24 * 3600)  # fmt: skip
    assert verdict.passed, verdict.message


def test_a_completed_soak_counts_after_a_newer_version_replaced_it() -> None:
    records = [rec(48), rec(3, version="v1.5.0")]
    verdict = policy.requires_previous(records, ["staging"], "v1.4.0", None, NOW, soak=24 * 3600)
    assert verdict.passed, verdict.message


def test_an_invalidated_version_never_satisfies_requires_previous() -> None:
    gone = rec(
        1, kind="invalidation", env="*", decision=None, reason="corrupts data", actor="alice"
    )
    verdict = policy.requires_previous([rec(48), gone], ["staging"], "v1.4.0", None, NOW)
    assert not verdict.passed
    assert "invalidated everywhere" in verdict.message and "corrupts data" in verdict.message


def test_the_digest_must_match_when_known() -> None:
    records = [rec(30, digest="sha256:aaa")]
    assert policy.requires_previous(records, ["staging"], "v1.4.0", "sha256:aaa", NOW).passed
    other = policy.requires_previous(records, ["staging"], "v1.4.0", "sha256:bbb", NOW)
    assert not other.passed and "sha256:bbb" in other.message
    same = policy.same_artifact(records, "staging", "v1.4.0", "sha256:bbb")
    assert not same.passed and "sha256:aaa" in same.message
    assert not policy.same_artifact(records, "staging", "v1.4.0", None).passed


def approve(hours_ago: float, who: str, kind: str = "approval", **kw: Any) -> Record:
    return rec(hours_ago, kind=kind, env="prod", decision=kind, actor=who, **kw)


def judge(records: list[Record], **kw: Any) -> policy.Verdict:
    args: dict[str, Any] = {"needed": 1, "expiry": 72 * 3600, "actor": "carol", "self_ok": False,
                            "now": NOW} | kw  # fmt: skip
    return policy.approval(records, "prod", "v1.4.0", "sha256:aaa", **args)


def test_approvals_are_bound_to_version_digest_and_time() -> None:
    assert judge([approve(1, "alice")]).passed
    assert not judge([approve(80, "alice")]).passed  # expired (72 h)
    assert "expired" in judge([approve(80, "alice")]).message
    assert not judge([approve(1, "alice", digest="sha256:other")]).passed
    wrong_version = approve(1, "alice")
    wrong_version.version = "v1.3.0"
    assert not judge([wrong_version]).passed


def test_self_approval_revoke_reject_and_counting() -> None:
    mine = judge([approve(1, "carol")])
    assert not mine.passed and "cannot approve their own promotion" in mine.message
    assert judge([approve(1, "carol")], self_ok=True).passed
    assert not judge([approve(2, "alice"), approve(1, "bob", kind="revoke")]).passed
    rejected = judge([approve(2, "alice"), approve(1, "bob", kind="reject", reason="incident")])
    assert not rejected.passed and "rejected for prod by bob" in rejected.message
    two = judge([approve(2, "alice"), approve(1, "alice")], needed=2)
    assert not two.passed and "(1 of 2)" in two.message
    assert judge([approve(2, "alice"), approve(1, "bob")], needed=2).passed
    assert judge([], ci_approver=("dave", "RELEASE_APPROVER")).passed


def test_version_pattern_and_no_downgrade() -> None:
    assert policy.version_pattern("v1.4.0-rc.1", "semver").passed
    short_hash = policy.version_pattern("3f2a91c", "semver")
    assert not short_hash.passed and "not a release version" in short_hash.message
    assert policy.version_pattern("2026.11.3", r"\d{4}\.\d+\.\d+").passed
    running = [rec(5, env="prod", version="v1.4.1")]
    down = policy.no_downgrade(running, "prod", "v1.4.0")
    assert not down.passed and "lower than v1.4.1" in down.message
    assert policy.no_downgrade(running, "prod", "v1.10.0").passed
    assert not policy.no_downgrade(running, "prod", "v1.4.1-rc.1").passed


def test_last_known_good_skips_rolled_back_and_invalidated_versions() -> None:
    records = [rec(50, env="prod", version="v1.2.0"), rec(40, env="prod", version="v1.3.0"),
               rec(30, env="prod", version="v1.4.0"), failed(29, env="prod", version="v1.4.0"),
               rec(1, kind="invalidation", env="*", version="v1.3.0", decision=None)]  # fmt: skip
    good = policy.last_known_good(records, "prod")
    assert good is not None and good.version == "v1.2.0"
    assert policy.last_known_good([], "prod") is None
