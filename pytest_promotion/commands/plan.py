"""``promotion plan``: the gates an environment would run, nothing run (a dry run).

    promotion plan --env staging            # gates/ (if there) and promotion.toml
    promotion plan --env prod tests/gates   # other gate paths

Runs ``pytest --env=NAME --promotion-plan`` in this process: every gate, declarative and
Python, with its trigger and threshold; nothing probed, no target launched, no decision,
no report. Exit 0, or pytest's code for a collection (2) or usage (4) error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import Subparsers

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("plan", help="list the gates an environment would run; run nothing")
    parser.add_argument("--env", required=True, help="the target environment")
    parser.add_argument(
        "--config", help="config file (default: promotion.toml, else pyproject.toml)"
    )
    parser.add_argument("paths", nargs="*", help="where the Python gates are (default: gates/)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import pytest

    paths = list(args.paths) or (["gates"] if Path("gates").is_dir() else [])
    argv = [f"--env={args.env}", "--promotion-plan", "-q", "-p", "no:cacheprovider"]
    if args.config:
        argv.append(f"--promotion-config={args.config}")
    if not paths:  # declarative gates only: collect nothing from the current directory
        argv += ["--ignore-glob=*", "--rootdir=."]
    return int(pytest.main([*argv, *paths]))
