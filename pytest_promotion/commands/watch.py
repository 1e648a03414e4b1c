"""``promotion watch``: watch an environment after its deploy, with the gate run's rules.

    promotion watch --env staging                          # the environment's watch table
    promotion watch --env prod --duration 30m --interval 60s --rollback execute

Every interval it re-runs the environment's health checks (http, tls, tcp, redis,
postgres, prometheus, grafana) and the Python gates marked ``gate(watch=True)`` (in a
bounded child pytest), prints a progress line, and appends each measurement to
the ledger. More failed measurements than ``failure_limit``: rollback (executed with
``--rollback execute``), recorded, and the environment is put on hold; more errors in a
row than ``consecutive_error_limit``: block and hold. Ctrl-C / SIGTERM: block, incomplete.

Exit 0 promote (the whole window healthy), 1 rollback or block, 4 a usage or config error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..config import ConfigError, canonical, load_config
from ..ledger import LedgerError, open_store
from ..ledger.identity import actor
from ..ledger.queries import current_in
from ..ledger.settings import ARTIFACT_VAR, ledger_url
from ..watch import Stop, WatchRequest, on_signals, run_watch, settings_for
from . import NEGATIVE, OK, Subparsers
from .ledger_common import add_common, fail

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("watch", help="watch an environment after its deploy")
    add_common(parser)
    parser.add_argument("--env", required=True, help="the environment")
    parser.add_argument("--duration", help="the window (default: the environment's watch table)")
    parser.add_argument("--interval", help="between measurements (default 60s)")
    parser.add_argument("--version", help="the version deployed (default: $PROMOTION_VERSION, "
                        "else the environment's current version in the ledger)")  # fmt: skip
    parser.add_argument("--artifact", help="its artifact digest (default: $PROMOTION_ARTIFACT)")
    parser.add_argument("--previous-version", help="the rollback target (default: the ledger's "
                        "last-known-good version)")  # fmt: skip
    parser.add_argument("--rollback", choices=("print", "execute"), default="print",
                        help="execute the rollback command, or only print it (default)")  # fmt: skip
    parser.set_defaults(handler=run)


def _version(args: argparse.Namespace, env: str, rootdir: Path) -> str | None:
    if args.version or os.environ.get("PROMOTION_VERSION"):
        return str(args.version or os.environ["PROMOTION_VERSION"])
    config = load_config(rootdir, args.config)
    url, secrets = ledger_url(args.ledger, config.options, os.environ, config.label)
    if url is None:
        return None
    try:
        store = open_store(url, config.path.parent if config.path else rootdir, secrets=secrets)
    except LedgerError:
        return None  # the watch says the ledger is unreachable
    try:
        return current_in(store, env)[0]
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    rootdir = Path(args.rootdir).resolve()
    try:
        config = load_config(rootdir, args.config)
        env = canonical(args.env)
        if env not in config.chain:
            raise ConfigError(
                f"--env {env}: unknown environment (known: {', '.join(config.chain)})"
            )
        if args.duration is None and config.tables.get(env, {}).get("watch") is None:
            raise ConfigError(
                f"{config.label}: [environments.{env}] has no 'watch' table: give --duration"
            )
        try:
            settings = settings_for(config, env, args.duration, args.interval)
        except ValueError as exc:
            raise ConfigError(str(exc).replace("--promotion-watch", "--duration")) from None
        who = actor(os.environ)[0]
        request = WatchRequest(
            config=config, env=env, settings=settings, version=_version(args, env, rootdir),
            digest=args.artifact or os.environ.get(ARTIFACT_VAR) or None, actor=who,
            ledger_option=args.ledger, previous_version=args.previous_version,
            execute=args.rollback == "execute",
        )  # fmt: skip
        stop = Stop()
        progress = (
            (lambda line: print(line, file=sys.stderr, flush=True))
            if args.json
            else (lambda line: print(line, flush=True))
        )
        with on_signals(stop):
            result = run_watch(request, progress, stop)
    except (ConfigError, LedgerError) as exc:
        return fail(str(exc).replace("--promotion-config ", "--config ", 1))
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print(f"decision: {result.decision.upper()}: {result.reason}")
        if result.hold:
            print(f"hold: {result.hold}")
        for warning in result.warnings:
            print(f"warning: {warning}")
        if result.watch_record:
            print(f"promotion ledger: watch {result.watch_record[:12]} in {result.ledger}")
    return OK if result.decision == "promote" else NEGATIVE
