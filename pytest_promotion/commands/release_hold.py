"""``promotion release-hold``: lift the hold a watch put on an environment.

    promotion release-hold --env prod --reason "v1.4.1 fixed the leak, INC-42"

After an automatic rollback (or a watch that could not measure), the environment carries
a hold: its next promotion blocks until a person releases it here. The release is a
record (who, when, why); an approval does not clear a hold. Exit 0 released, 1 no hold on
that environment, 4 a usage, config or ledger error.
"""

from __future__ import annotations

import argparse
import os

from ..config import ConfigError
from ..ledger.identity import actor
from ..ledger.model import short_time
from ..watch.journal import active_hold, release_hold
from . import NEGATIVE, OK, Subparsers
from .ledger_common import Ledger, add_common, fail, print_json, run_command

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("release-hold", help="lift the hold a watch put on an environment")
    add_common(parser)
    parser.add_argument("--env", required=True, help="the environment")
    parser.add_argument("--reason", required=True, help="why it may be promoted again (recorded)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        env = ledger.env(args.env)
        if not args.reason.strip():
            raise ConfigError("--reason: expected why the hold may be lifted, found ''")
        hold = active_hold(ledger.store, env)
        if hold is None:
            return fail(f"{env} is not on hold: nothing to release", NEGATIVE)
        who, source = actor(os.environ)
        record = release_hold(ledger.store, env, hold, args.reason, who, source)
        if args.json:
            print_json(ledger.store.get(record.id)[0].to_json())
        else:
            print(
                f"{env}: hold {hold.id[:12]} (since {short_time(hold.recorded_at)}: "
                f"{str(hold.body.get('reason', ''))[:120]}) released by {who}: "
                f"recorded as {record.id[:12]}"
            )
        return OK

    return run_command(args, body)
