"""What the ledger's subcommands share: the config, the ledger, --json, one-line errors.

Exit codes: 0 ok, 1 a negative answer (a refused approval, no such record, a failed
rollback), 4 a usage or configuration error, or a ledger that cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, PromotionConfig, canonical, load_config
from ..ledger import LedgerError, Store, open_store
from ..ledger.model import Record, short_time
from ..ledger.settings import ledger_url
from ..redact import redact
from . import USAGE_ERROR

__all__ = ["Ledger", "add_common", "fail", "open_ledger", "print_table", "run_command"]


@dataclass
class Ledger:
    config: PromotionConfig
    store: Store
    base: Path

    def env(self, name: str) -> str:
        name = canonical(name)
        if name not in self.config.chain:
            raise ConfigError(
                f"--env {name}: unknown environment (known: {', '.join(self.config.chain)})"
            )
        return name


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="config file (default: promotion.toml, else pyproject.toml)"
    )
    parser.add_argument("--rootdir", default=".", help="where to look for the config (default: .)")
    parser.add_argument(
        "--ledger", help="the ledger URL (default: the config's, or $PROMOTION_LEDGER)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def open_ledger(args: argparse.Namespace) -> Ledger:
    rootdir = Path(args.rootdir).resolve()
    if not rootdir.is_dir():
        raise ConfigError(f"--rootdir {args.rootdir}: not a directory")
    config = load_config(rootdir, args.config)
    where = config.label
    url, secrets = ledger_url(args.ledger, config.options, os.environ, where)
    if url is None:
        raise ConfigError(f"{where}: the ledger is off (ledger = false): nothing to read or write")
    base = config.path.parent if config.path else rootdir
    return Ledger(config, open_store(url, base, secrets=secrets), base)


def fail(message: str, code: int = USAGE_ERROR) -> int:
    print(f"ERROR: {message}", file=sys.stderr)
    return code


def run_command(args: argparse.Namespace, body: Callable[[Ledger], int]) -> int:
    """Open the ledger, run ``body``; a config or ledger error is one line and exit 4."""
    try:
        ledger = open_ledger(args)
    except (ConfigError, LedgerError) as exc:
        return fail(str(exc).replace("--promotion-config ", "--config ", 1))
    try:
        return body(ledger)
    except (ConfigError, LedgerError) as exc:
        return fail(str(exc))
    finally:
        ledger.store.close()


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) if c is not None else "-" for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)
    ]
    for row in [list(header), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def record_row(r: Record) -> list[Any]:
    summary = r.body.get("summary") or r.body.get("reason") or ""
    return [short_time(r.recorded_at), r.environment, r.kind, r.label, r.decision or "",
            r.actor, r.id[:12], redact(str(summary))[:80]]  # fmt: skip


RECORD_HEADER = ("time (UTC)", "env", "kind", "version", "decision", "actor", "record", "why")
