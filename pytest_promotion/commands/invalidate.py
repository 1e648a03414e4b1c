"""``promotion invalidate``: a version can no longer satisfy ``requires_previous``.

    promotion invalidate --version v1.4.0 --reason "data corruption, INC-42"
    promotion invalidate --version v1.4.0 --env staging --reason "..."

Without ``--env`` it holds everywhere. Exit 0 recorded, 4 for a usage, config or ledger error.
"""

from __future__ import annotations

import argparse
import os

from ..ledger.identity import actor
from ..ledger.model import Record
from . import OK, Subparsers
from .ledger_common import Ledger, add_common, print_json, run_command

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("invalidate", help="a version can no longer be promoted downstream")
    add_common(parser)
    parser.add_argument("--version", required=True, help="the version")
    parser.add_argument("--env", help="only in this environment (default: everywhere)")
    parser.add_argument("--reason", required=True, help="why (recorded)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        env = ledger.env(args.env) if args.env else "*"
        who, source = actor(os.environ)
        record = Record(kind="invalidation", environment=env, version=args.version, actor=who,
                        body={"actor_source": source, "reason": args.reason})  # fmt: skip
        ledger.store.append([record])
        if args.json:
            print_json(ledger.store.get(record.id)[0].to_json())
        else:
            where = "everywhere" if env == "*" else f"in {env}"
            print(f"{args.version} invalidated {where} by {who}: recorded as {record.id[:12]}")
        return OK

    return run_command(args, body)
