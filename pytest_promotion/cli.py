"""The ``promotion`` console script: one subcommand per module of ``pytest_promotion.commands``.

    promotion validate --env staging
    promotion <command> --help

Exit codes, for every subcommand: 0 ok, 1 a negative answer (a refused approval, a
policy that does not hold), 4 a usage or configuration error, printed as one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from .commands import USAGE_ERROR

__all__ = ["COMMANDS", "main"]

# Module names under pytest_promotion.commands, in the order `--help` lists them. Each
# module has ``register(subparsers)``, which adds its parser and sets ``handler``.
COMMANDS: tuple[str, ...] = (
    "init",
    "validate",
    "plan",
    "demo",
    "history",
    "show",
    "status",
    "approve",
    "invalidate",
    "rollback",
    "ledger",
    "watch",
    "release_hold",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 4 like every other usage error."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"ERROR: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="promotion", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
