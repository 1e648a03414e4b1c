"""``promotion history``: the ledger's records, newest last.

    promotion history --env prod --limit 20
    promotion history --version v1.4.0 --json
    promotion history --env prod --measurements

A post-deploy watch writes one record per measurement (a 24 h watch at 10 s, 8,640 of
them) besides its start and its end: by default it is one line, from its start to its
end, with its outcome and its counts; ``--measurements`` lists every record.

Exit 0 (also when nothing matches), 4 for a config or ledger error.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from ..ledger import Record, Store
from ..ledger.model import short_time
from ..redact import redact
from . import OK, Subparsers
from .ledger_common import (
    RECORD_HEADER,
    Ledger,
    add_common,
    print_json,
    print_table,
    record_row,
    run_command,
)

__all__ = ["register", "run"]

MEASUREMENT = "measurement"
WATCH = "watch"


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("history", help="who promoted what, where, when: the ledger's records")
    add_common(parser)
    parser.add_argument("--env", help="only this environment")
    parser.add_argument("--version", help="only this version")
    parser.add_argument(
        "--limit",
        type=int,
        default=50,
        help="the newest N records (default 50; a watch's measurements count only with "
        "--measurements)",
    )
    parser.add_argument(
        "--measurements",
        action="store_true",
        help="every record of a post-deploy watch, each measurement on its own line "
        "(default: one line per watch)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def body(ledger: Ledger) -> int:
        envs = [ledger.env(args.env)] if args.env else None
        records = ledger.store.query(
            environments=envs,
            version=args.version,
            exclude_kinds=None if args.measurements else [MEASUREMENT],
            limit=max(1, args.limit),
        )
        if args.json:
            print_json([r.to_json() for r in records])
        elif not records:
            print(f"no records in {ledger.store.shown}")
        elif args.measurements:
            print_table(RECORD_HEADER, [record_row(r) for r in records])
        else:
            print_table(RECORD_HEADER, rows(ledger.store, records))
        return OK

    return run_command(args, body)


_STATES = ("successful", "failed", "error", "inconclusive")


@dataclass
class _Watch:
    """A watch as the window shows it: its start, and its end (None: still running, or
    stopped without writing one)."""

    id: str
    start: Record | None = None
    end: Record | None = None
    row: list[Any] = field(default_factory=list)  # filled once every record is seen

    @property
    def environment(self) -> str:
        first = self.start or self.end
        return first.environment if first is not None else "-"


def rows(store: Store, records: list[Record]) -> list[list[Any]]:
    """The table's rows: one a record, except a watch's start and end, which make one
    row, where the first of them is in the window."""
    out: list[list[Any]] = []
    watches: dict[str, _Watch] = {}
    for r in records:
        if r.kind != WATCH:
            out.append(record_row(r))
            continue
        key = str(r.body.get("watch") or r.id)
        watch = watches.get(key)
        if watch is None:
            watch = watches[key] = _Watch(key)
            out.append(watch.row)
        if r.decision == "running":
            watch.start = r
        else:
            watch.end = r
    unfinished = _tally(store, [w for w in watches.values() if w.end is None])
    for watch in watches.values():
        if watch.start is None:  # the window begins after it started
            watch.start = next((r for r in store.get(watch.id) if r.id == watch.id), None)
        counts = unfinished.get(watch.id) or _recorded(watch.end)
        watch.row[:] = _watch_row(watch, counts)
    return out


def _watch_row(watch: _Watch, counts: dict[str, int]) -> list[Any]:
    measured = sum(counts.values())
    tally = (
        f"{measured} measurement{'s' if measured != 1 else ''}, {counts['failed']} failed, "
        f"{counts['error'] + counts['inconclusive']} without data"
    )
    end, first = watch.end, watch.start or watch.end
    assert first is not None  # a watch is in the table because a record of it is
    if end is None:
        why, outcome = f"no end recorded: {tally}", "running"
    else:
        why, outcome = f"until {short_time(end.recorded_at)}: {tally}", end.decision or ""
    start = watch.start.recorded_at if watch.start is not None else None
    return [short_time(start), first.environment, WATCH, first.label, outcome, first.actor,
            watch.id[:12], redact(why)]  # fmt: skip


def _recorded(end: Record | None) -> dict[str, int]:
    """The counts the watch's end record carries."""
    counts = dict.fromkeys(_STATES, 0)
    recorded = end.body.get("counts") if end is not None else None
    if isinstance(recorded, dict):
        counts.update({k: v for k, v in recorded.items() if k in counts and type(v) is int})
    return counts


def _tally(store: Store, watches: list[_Watch]) -> dict[str, dict[str, int]]:
    """Watches without an end record: their measurement records, counted (one read of
    each environment's measurements)."""
    counts = {w.id: dict.fromkeys(_STATES, 0) for w in watches}
    for env in sorted({w.environment for w in watches}):
        for m in store.query(environments=[env], kinds=[MEASUREMENT]):
            found = counts.get(str(m.body.get("watch")))
            if found is not None and m.decision in found:
                found[m.decision] += 1
    return counts
