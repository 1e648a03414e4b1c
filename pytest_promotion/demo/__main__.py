"""``python -m pytest_promotion.demo``: the demo target as a process of its own.

    python -m pytest_promotion.demo serve --env-file build/demo.env [--fault unhealthy]
    python -m pytest_promotion.demo ready build/demo.env

``serve`` listens on 127.0.0.1 (``--port``, default a free one), then writes
PROMOTION_DEMO_URL, PROMOTION_DEMO_CA and PROMOTION_DEMO_HOSTPORT to ``--env-file``
(atomically, so a reader never sees half of it) and serves until SIGTERM or Ctrl-C,
removing the file. ``ready`` exits 0 once that file exists and the port accepts a TLS
connection: the readiness check of an environment's ``launch``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from .service import FAULT_VAR, FAULTS, DemoService

__all__ = ["main", "read_env_file"]


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def _serve(args: argparse.Namespace) -> int:
    from .. import __version__

    fault = args.fault if args.fault is not None else os.environ.get(FAULT_VAR)
    try:
        demo = DemoService.start(version=args.version or __version__, fault=fault, port=args.port)
    except (ValueError, OSError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 4
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    env_file = Path(args.env_file) if args.env_file else None
    try:
        if env_file is not None:
            env_file.parent.mkdir(parents=True, exist_ok=True)
            partial = env_file.with_name(env_file.name + ".partial")
            partial.write_text("".join(f"{k}={v}\n" for k, v in demo.variables().items()))
            os.replace(partial, env_file)
        state = f"fault {demo.fault!r}" if demo.fault else "healthy"
        print(f"demo target on {demo.url} ({state}); CA {demo.ca_bundle}", flush=True)
        stop.wait()
    finally:
        if env_file is not None:
            env_file.unlink(missing_ok=True)
        demo.stop()
        print("demo target stopped", flush=True)
    return 0


def _ready(args: argparse.Namespace) -> int:
    path = Path(args.env_file)
    if not path.is_file():
        print(f"not ready: {path} not written yet", file=sys.stderr)
        return 1
    host, _, port = read_env_file(path).get("PROMOTION_DEMO_HOSTPORT", "").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return 0
    except (OSError, ValueError) as exc:
        print(f"not ready: {host}:{port}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_promotion.demo")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the demo target until SIGTERM")
    serve.add_argument(
        "--fault", choices=[*FAULTS, "none"], help=f"misbehave (default: ${FAULT_VAR}, else none)"
    )
    serve.add_argument("--port", type=int, default=0, help="default: a free port")
    serve.add_argument("--env-file", help="write PROMOTION_DEMO_* here once listening")
    serve.add_argument("--version", help="the version /health reports (default: this package's)")
    serve.set_defaults(handler=_serve)
    ready = sub.add_parser("ready", help="exit 0 once the target of ENV_FILE accepts connections")
    ready.add_argument("env_file")
    ready.set_defaults(handler=_ready)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
