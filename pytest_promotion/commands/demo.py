"""``promotion demo``: a gate run against the embedded demo target, from the installed
package alone (no repository, no network beyond loopback).

    promotion demo                    # healthy: PROMOTE, exit 0
    promotion demo --fault unhealthy  # ROLLBACK, with the reason and the rollback command
    promotion demo --list-faults

It starts the demo target on 127.0.0.1, writes the demo suite (demo/suite.py) to a
temporary directory and runs ``pytest --env=dev`` there as a subprocess; its exit status
is the run's (0 only for promote). ``--keep DIR`` writes the suite to DIR and keeps it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import OK, USAGE_ERROR, Subparsers

__all__ = ["register", "run"]


def register(sub: Subparsers) -> None:
    from ..demo.service import FAULTS

    parser = sub.add_parser(
        "demo", help="run gates against the embedded demo target (--fault to see a rollback)"
    )
    parser.add_argument("--fault", choices=list(FAULTS), help="make the demo target misbehave")
    parser.add_argument("--list-faults", action="store_true", help="list the faults and exit")
    parser.add_argument("--keep", metavar="DIR", help="write the demo suite here and keep it")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..demo.service import FAULTS
    from ..demo.suite import EXPECTED

    if args.list_faults:
        for name, what in FAULTS.items():
            decision, gate = EXPECTED[name]
            print(f"{name:10} {what}: {decision} ({gate})")
        return OK
    if args.keep:
        directory = Path(args.keep)
        if directory.exists() and any(directory.iterdir()):
            print(
                f"ERROR: promotion demo: --keep {args.keep}: not an empty directory",
                file=sys.stderr,
            )
            return USAGE_ERROR
        directory.mkdir(parents=True, exist_ok=True)
        return _run_in(directory.resolve(), args.fault, __version__)
    with tempfile.TemporaryDirectory(prefix="promotion-demo-suite-") as tmp:
        return _run_in(Path(tmp), args.fault, __version__)


def _run_in(directory: Path, fault: str | None, version: str) -> int:
    from ..demo.service import DemoService
    from ..demo.suite import write_suite

    gates = write_suite(directory)
    demo = DemoService.start(version=version, fault=fault)
    try:
        state = f"fault {fault!r}" if fault else "healthy"
        print(f"promotion demo: target {demo.url} ({state}); suite {directory}", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOTION_")}
        env.pop("PYTEST_ADDOPTS", None)
        env.update(demo.variables(), PROMOTION_VERSION=version)
        argv = [
            sys.executable, "-m", "pytest", "--env=dev", "-p", "no:cacheprovider",
            f"--rootdir={directory}", "--promotion-report=decision.json", str(gates),
        ]  # fmt: skip
        print(f"promotion demo: {' '.join(['pytest', *argv[3:]])}", flush=True)
        # a bounded run: the suite's own waits are seconds; 120 s is far beyond them
        completed = subprocess.run(argv, cwd=directory, env=env, timeout=120, check=False)
        return completed.returncode
    except subprocess.TimeoutExpired:
        print("ERROR: promotion demo: the gate run did not end within 120 s", file=sys.stderr)
        return 1
    finally:
        demo.stop()
