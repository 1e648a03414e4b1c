"""``promotion rollback``: run an environment's rollback command, and record it.

    promotion rollback --env prod                 # to the last-known-good version
    promotion rollback --env prod --to v1.3.2 --yes
    promotion rollback --env prod --dry-run       # print the command, run nothing

The command is the environment's ``rollback`` template rendered with ``{previous_version}``
= the target, run like the plugin's execute mode (no shell, its deadline
``rollback_timeout``, its output bounded), under the environment's lease. On a terminal it
asks for confirmation unless ``--yes``; elsewhere ``--yes`` is required. Exit 0 done (or
printed), 1 the command failed or the environment is being promoted, 4 usage, config or
ledger error (no last-known-good version, no rollback template).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from ..config import ConfigError
from ..ledger.identity import actor, ci_run_url
from ..ledger.lease import Lease, describe
from ..ledger.model import Record
from ..ledger.queries import current_in, last_known_good_in
from ..ledger.store import LeaseInfo
from ..redact import redact
from ..rollback import RenderError, render, run_rollback
from . import NEGATIVE, OK, Subparsers
from .ledger_common import Ledger, add_common, fail, print_json, run_command

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "rollback", help="roll an environment back to its last-known-good version"
    )
    add_common(parser)
    parser.add_argument("--env", required=True, help="the environment")
    parser.add_argument("--to", help="the version to go back to (default: the last-known-good)")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="print the command; run nothing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        env = ledger.env(args.env)
        environment = ledger.config.environment(env)
        running, _ = current_in(ledger.store, env)
        target = args.to
        if target is None:
            good = last_known_good_in(ledger.store, env, exclude=running)
            if good is None or good.version is None:
                raise ConfigError(
                    f"{env}: no last-known-good version in the ledger: give --to VERSION"
                )
            target = good.version
        if environment.rollback is None:
            raise ConfigError(
                f"{ledger.config.label}: [environments.{env}] has no 'rollback' command"
            )
        values = {"env": env, "version": running, "previous_version": target}
        try:
            argv = render(environment.rollback, values)
        except RenderError as exc:
            raise ConfigError(
                f"{ledger.config.label}: [environments.{env}] key 'rollback': {exc}"
            ) from None
        shown = redact(shlex.join(argv), environment.secrets)
        if args.dry_run:
            print_json({"argv": shown, "to": target}) if args.json else print(f"would run: {shown}")
            return OK
        if not args.yes:
            if not sys.stdin.isatty():
                return fail("not a terminal: pass --yes to run the rollback without confirmation")
            if input(
                f"roll {env} back from {running} to {target} with: {shown}? [y/N] "
            ).strip().lower() not in ("y", "yes"):
                return fail("rollback not confirmed", NEGATIVE)
        who, source = actor(os.environ)
        lease = Lease(
            ledger.store,
            LeaseInfo.mine(env, os.urandom(8).hex(), who, running, ci_run_url(os.environ)),
            None,
        )
        holder = lease.acquire(0, lambda line: None)
        if holder is not None:
            return fail(describe(holder), NEGATIVE)
        try:
            result = run_rollback(argv, environment.rollback_timeout, cwd=str(ledger.base))
            result.output = redact(result.output, environment.secrets)
            ok = result.returncode == 0 and not result.error
            record = Record(
                kind="rollback", environment=env, version=running, decision="done" if ok else "failed",
                actor=who, body={"to_version": target, "argv": shown.split(" "), "result": result.to_json(),
                                 "actor_source": source, "run_url": ci_run_url(os.environ), "by_hand": True},
            )  # fmt: skip
            ledger.store.append([record])
        finally:
            lease.release()
        if args.json:
            print_json(ledger.store.get(record.id)[0].to_json())
        else:
            print(result.output.rstrip())
            state = "done" if ok else f"FAILED ({result.error or f'exit {result.returncode}'})"
            print(f"rollback of {env} to {target}: {state}; recorded as {record.id[:12]}")
        return OK if ok else NEGATIVE

    return run_command(args, body)
