"""``promotion approve | reject | revoke``: a person's word on (environment, version).

    promotion approve --env prod --version v1.4.0 --by "Alice Martin" --reason "CAB-123"
    promotion reject  --env prod --version v1.4.0 --by alice --reason "open incident"
    promotion revoke  --env prod --version v1.4.0 --by alice      # voids earlier approvals

The approver's identity is detected like a run's actor (GITHUB_ACTOR, GITLAB_USER_LOGIN,
BUILD_USER, else the OS user) and recorded with its source; ``--by`` is recorded beside it
as the declared name. Exit 0 recorded, 1 refused (the version is invalidated for that
environment; nothing to revoke), 4 for a usage, config or ledger error.
"""

from __future__ import annotations

import argparse
import os

from ..ledger.identity import actor
from ..ledger.model import Record
from ..ledger.policy import invalidation
from . import NEGATIVE, OK, Subparsers
from .ledger_common import Ledger, add_common, fail, print_json, run_command

__all__ = ["register", "run"]

HELP = {
    "approve": "approve a version for an environment (a policy gate's approval)",
    "reject": "reject a version for an environment (its approval gate fails)",
    "revoke": "revoke the approvals and rejects recorded so far for a version",
}
KIND = {"approve": "approval", "reject": "reject", "revoke": "revoke"}


def register(sub: Subparsers) -> None:
    for name, text in HELP.items():
        parser = sub.add_parser(name, help=text)
        add_common(parser)
        parser.add_argument("--env", required=True, help="the environment")
        parser.add_argument("--version", required=True, help="the version")
        parser.add_argument("--digest", help="the artifact digest it is bound to (optional)")
        parser.add_argument(
            "--by", required=True, help="your name, recorded beside your detected identity"
        )
        parser.add_argument("--reason", default="", help="why (recorded)")
        parser.set_defaults(handler=run, verb=name)


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        env = ledger.env(args.env)
        kind = KIND[args.verb]
        records = ledger.store.query(environments=[env, "*"], version=args.version)
        if kind == "approval" and (gone := invalidation(records, env, args.version)):
            return fail(
                f"{args.version} was invalidated at {gone.recorded_at} ({gone.body.get('reason')}): "
                "refusing to approve it", NEGATIVE)  # fmt: skip
        if kind == "revoke" and not any(
            r.kind in ("approval", "reject") and r.environment == env for r in records
        ):
            return fail(
                f"nothing to revoke: no approval or reject of {args.version} for {env}", NEGATIVE
            )
        who, source = actor(os.environ)
        record = Record(
            kind=kind, environment=env, version=args.version, digest=args.digest,
            decision=kind, actor=who,
            body={"actor_source": source, "by": args.by, "reason": args.reason},
        )  # fmt: skip
        ledger.store.append([record])
        stored = ledger.store.get(record.id)[0]
        if args.json:
            print_json(stored.to_json())
        else:
            print(f"{kind} of {args.version} for {env} by {who} ({source}, declared {args.by!r}) "
                  f"recorded as {record.id[:12]} at {stored.recorded_at}")  # fmt: skip
        return OK

    return run_command(args, body)
