"""``promotion status``: per environment, what runs there and what stands in its way.

    promotion status
    promotion status --json

For each environment of the chain: the current version and since when, its last decision,
the last-known-good version, and, for that version, what the next environment's policy
gates still miss ("v1.4.0: staging soak 20 h of 24 h; prod approval missing"). Policy
checks of the environment's own [[environments.NAME.checks]] are judged; shared
[[checks]] and rollback_ready are not. Exit 0, 4 for a config or ledger error.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..ledger import policy
from ..ledger.identity import actor, parse_duration
from ..ledger.model import Record, parse_time, short_time
from ..ledger.queries import current_in, last_known_good_in
from . import OK, Subparsers
from .ledger_common import Ledger, add_common, print_json, print_table, run_command

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "status", help="per environment: current version, last decision, blockers"
    )
    add_common(parser)
    parser.set_defaults(handler=run)


def _blockers(
    records: Sequence[Record], chain: Sequence[str], i: int, version: str,
    checks: Sequence[Mapping[str, Any]], now: Any, me: str,
) -> list[str]:  # fmt: skip
    env = chain[i + 1]
    out = []
    for spec in checks:
        verdict = None
        if "requires_previous" in spec:
            value = spec["requires_previous"]
            ups = (
                list(chain[: i + 1])
                if value == "all"
                else value
                if isinstance(value, list)
                else [chain[i]]
            )
            soak = parse_duration(spec["soak"], "soak") if "soak" in spec else None
            verdict = policy.requires_previous(records, ups, version, None, now, soak)
        elif "approval" in spec or "approvals" in spec:
            verdict = policy.approval(
                records, env, version, None, needed=int(spec.get("approvals", 1)),
                expiry=parse_duration(spec.get("approval_expiry", "72h"), "approval_expiry"),
                actor=me, self_ok=True, now=now,
            )  # fmt: skip
        elif "version_pattern" in spec:
            verdict = policy.version_pattern(version, str(spec["version_pattern"]))
        elif "no_downgrade" in spec:
            verdict = policy.no_downgrade(records, env, version)
        if verdict is not None and not verdict.passed:
            out.append(f"{env}: {verdict.message}")
    return out


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        chain, store = ledger.config.chain, ledger.store
        now = parse_time(store.now())
        me = actor(os.environ)[0]
        rows: list[dict[str, Any]] = []
        for i, env in enumerate(chain):
            version, since = current_in(store, env)
            last = next(iter(store.query(environments=[env], kinds=["decision"], limit=1)), None)
            good = last_known_good_in(store, env)
            checks = (
                ledger.config.tables.get(chain[i + 1], {}).get("checks", [])
                if i + 1 < len(chain)
                else []
            )
            blockers = []
            if version and checks:
                records = store.query(environments=[*chain, "*"], version=version)
                blockers = _blockers(records, chain, i, version, checks, now, me)
            rows.append({
                "environment": env, "version": version,
                "since": since.recorded_at if since else None,
                "last_decision": last.decision if last else None,
                "last_decision_at": last.recorded_at if last else None,
                "last_record": last.id if last else None,
                "last_known_good": good.version if good else None,
                "hold": _hold(store, env), "next": blockers,
            })  # fmt: skip
        if args.json:
            print_json(rows)
            return OK
        table = [[r["environment"], r["version"], short_time(r["since"]),
                  f"{r['last_decision']} {short_time(r['last_decision_at'])}" if r["last_decision"] else None,
                  r["last_known_good"]] for r in rows]  # fmt: skip
        print_table(("env", "version", "since (UTC)", "last decision", "last known good"), table)
        for r in rows:
            if r["hold"]:
                print(f"{r['environment']}: on hold since {short_time(r['hold']['since'])} "
                      f"(record {r['hold']['record'][:12]}): promotion release-hold lifts it")  # fmt: skip
            if r["next"]:
                print(f"{r['version']}: " + "; ".join(r["next"]))
        return OK

    return run_command(args, body)


def _hold(store: Any, env: str) -> dict[str, Any] | None:
    """The hold a watch put on ``env`` (docs/watch.md), if it is on."""
    from ..watch.journal import active_hold

    hold = active_hold(store, env)
    if hold is None:
        return None
    return {"record": hold.id, "since": hold.recorded_at, "reason": hold.body.get("reason")}
