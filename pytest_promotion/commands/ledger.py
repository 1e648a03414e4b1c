"""``promotion ledger sync | migrate | export``: the ledger itself.

    promotion ledger sync                    # write .promotion/spool/ (idempotent)
    promotion ledger migrate                 # create or upgrade the schema; print its version
    promotion ledger export --format jsonl > audit.jsonl

Exit 0, 4 for a usage, config or ledger error (a spool file that is not a record included).
"""

from __future__ import annotations

import argparse
import json

from ..ledger.spool import sync
from ..ledger.store import SCHEMA_VERSION
from . import OK, Subparsers
from .ledger_common import Ledger, add_common, print_json, run_command

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("ledger", help="sync the spool, migrate the schema, export the ledger")
    add_common(parser)
    parser.add_argument("action", choices=("sync", "migrate", "export"))
    parser.add_argument("--format", choices=("jsonl",), default="jsonl", help="export format")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        if args.action == "sync":
            written, known = sync(ledger.base / ".promotion" / "spool", ledger.store)
            if args.json:
                print_json({"written": written, "already_recorded": known})
            else:
                print(
                    f"synced {written} spooled record(s) to {ledger.store.shown}; {known} already there"
                )
        elif args.action == "migrate":
            version = ledger.store.schema_version()
            if args.json:
                print_json({"schema_version": version, "tool_schema_version": SCHEMA_VERSION})
            else:
                print(
                    f"{ledger.store.shown}: schema version {version} (this tool: {SCHEMA_VERSION})"
                )
        else:
            for record in ledger.store.query(full=True):
                print(json.dumps({**record.to_json(), "seq": record.seq}, default=str))
        return OK

    return run_command(args, body)
