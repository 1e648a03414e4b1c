"""``promotion show RECORD``: one record, whole (gates, evidence, rollback).

    promotion show 3f2a91c0
    promotion show 3f2a91c0 --json

RECORD is an id or its first characters (at least 4). Exit 0, 1 when no record matches,
4 for an ambiguous prefix, a config or ledger error.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..ledger.model import Record, short_time
from . import NEGATIVE, OK, Subparsers
from .ledger_common import Ledger, add_common, fail, print_json, print_table, run_command

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("show", help="one ledger record, whole")
    add_common(parser)
    parser.add_argument("record", help="record id (or its first characters)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        if len(args.record) < 4:
            return fail(f"record {args.record!r}: give at least 4 characters of its id")
        found = ledger.store.get(args.record)
        if not found:
            return fail(f"no record {args.record!r} in {ledger.store.shown}", NEGATIVE)
        if len(found) > 1:
            return fail(
                f"record {args.record!r} is ambiguous: {', '.join(r.id[:12] for r in found)}"
            )
        record = found[0]
        if args.json:
            print_json(record.to_json())
        else:
            show(record)
        return OK

    return run_command(args, body)


def show(r: Record) -> None:
    b: dict[str, Any] = r.body
    print(f"record {r.id} ({r.kind})")
    print(f"  environment: {r.environment}")
    print(
        f"  version: {r.label}"
        + (f" (from {b['version_source']})" if b.get("version_source") else "")
    )
    for key, label in (("digest", "artifact"), ("decision", "decision")):
        if getattr(r, key):
            print(f"  {label}: {getattr(r, key)}")
    print(f"  actor: {r.actor}" + (f" (from {b['actor_source']})" if b.get("actor_source") else ""))
    print(
        f"  recorded: {short_time(r.recorded_at)} UTC"
        + (f", started {short_time(b['started_at'])}" if b.get("started_at") else "")
    )
    for key in (
        "by",
        "reason",
        "to_version",
        "commit",
        "run_url",
        "config_hash",
        "previous_version",
        "clock",
    ):
        if b.get(key):
            print(f"  {key.replace('_', ' ')}: {b[key]}")
    for reason in b.get("reasons", []):
        print(f"  reason: {reason}")
    for warning in b.get("warnings", []):
        print(f"  warning: {warning}")
    gates = b.get("gates") or []
    if gates:
        print()
        rows = [[g.get("id"), g.get("outcome"), g.get("measured"), g.get("threshold"),
                 (g.get("message") or "")[:100]] for g in gates]  # fmt: skip
        print_table(("gate", "outcome", "measured", "threshold", "message"), rows)
    if b.get("argv"):
        print(f"\n  rollback: {' '.join(b['argv'])}")
    if b.get("result"):
        result = b["result"]
        print(
            f"  result: exit {result.get('returncode')}"
            + (f", {result['error']}" if result.get("error") else "")
        )
