"""``promotion history``: the ledger's records, newest last.

    promotion history --env prod --limit 20
    promotion history --version v1.4.0 --json

Exit 0 (also when nothing matches), 4 for a config or ledger error.
"""

from __future__ import annotations

import argparse

from . import OK, Subparsers
from .ledger_common import (
    RECORD_HEADER,
    Ledger,
    add_common,
    print_json,
    print_table,
    record_row,
    run_command,
)

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("history", help="who promoted what, where, when: the ledger's records")
    add_common(parser)
    parser.add_argument("--env", help="only this environment")
    parser.add_argument("--version", help="only this version")
    parser.add_argument("--limit", type=int, default=50, help="the newest N records (default 50)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        envs = [ledger.env(args.env)] if args.env else None
        records = ledger.store.query(
            environments=envs, version=args.version, limit=max(1, args.limit)
        )
        if args.json:
            print_json([r.to_json() for r in records])
        elif not records:
            print(f"no records in {ledger.store.shown}")
        else:
            print_table(RECORD_HEADER, [record_row(r) for r in records])
        return OK

    return run_command(args, body)
