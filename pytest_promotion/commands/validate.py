"""``promotion validate``: check a config without running any gate.

    promotion validate                      # every environment of promotion.toml
    promotion validate --env staging        # one environment, ${VAR} resolved
    promotion validate --config conf/gates.toml

Exit 0 when valid, 4 with one line naming file, table and key when not (a rollback
template with a misspelt placeholder included), and when there is no config to validate.
Resolving ``${VAR}`` needs the variables (or the dotenv file) of that environment.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import ConfigError, canonical, load_config
from . import OK, USAGE_ERROR, Subparsers

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("validate", help="validate the config; list each environment's checks")
    parser.add_argument(
        "--config", help="config file (default: promotion.toml, else pyproject.toml)"
    )
    parser.add_argument("--env", help="validate only this environment, with ${VAR} resolved")
    parser.add_argument("--rootdir", default=".", help="where to look for the config (default: .)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rootdir = Path(args.rootdir).resolve()
    try:
        if not rootdir.is_dir():
            raise ConfigError(f"--rootdir {args.rootdir}: not a directory")
        config = load_config(rootdir, args.config)
        if config.path is None:
            raise ConfigError(
                f"{rootdir}: no promotion.toml, nor [tool.promotion] in pyproject.toml: "
                "nothing to validate"
            )
        names = [canonical(args.env)] if args.env else list(config.chain)
        print(f"{config.label}: chain {' -> '.join(config.chain)}")
        for name in names:
            environment = config.environment(name)
            checks = ", ".join(c.id for c in environment.checks) or "no declarative checks"
            print(f"  {name}: {checks}")
            needs = _run_time_values(environment.rollback)
            if needs:  # given when the run starts; a run without them stops with exit 4
                print(f"    rollback command needs at run time: {'; '.join(needs)}")
    except ConfigError as exc:
        # the plugin's option is --promotion-config; here it is --config
        message = str(exc).replace("--promotion-config ", "--config ", 1)
        print(f"ERROR: {message}", file=sys.stderr)
        return USAGE_ERROR
    return OK


def _run_time_values(template: Sequence[str] | None) -> list[str]:
    """What the rollback template needs that only a run can give, and where from."""
    from ..rollback import template_fields

    fields = template_fields(template)
    needs = []
    if "version" in fields:
        needs.append("--promotion-version or PROMOTION_VERSION (else the ledger's git describe)")
    if "previous_version" in fields:
        needs.append(
            "--promotion-previous-version or PROMOTION_PREVIOUS_VERSION "
            "(else the ledger's last-known-good version)"
        )
    return needs
