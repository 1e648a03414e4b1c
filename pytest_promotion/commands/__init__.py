"""The subcommands of the ``promotion`` console script, one module each.

A module here defines ``register(subparsers)``: it adds its parser with
``subparsers.add_parser(NAME, help=...)`` and sets ``handler`` (``args -> int``) with
``set_defaults``. It is listed in ``cli.COMMANDS``. Errors are one line on stderr,
``ERROR: ...``; exit codes are the constants below.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

__all__ = ["NEGATIVE", "OK", "USAGE_ERROR", "Subparsers"]

OK = 0
NEGATIVE = 1  # a negative answer: a refused approval, a policy that does not hold
USAGE_ERROR = 4  # pytest's own code for usage errors

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
