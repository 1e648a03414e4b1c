"""Reuse a tool's reports when they are fresh for the current tree, else run the tool.

    python -m pytest_promotion.evidence --report build/unit-tests.xml \\
        --report build/coverage.xml --stamp build/unit-tests.stamp -- pytest tests ...

The stamp records a fingerprint of what the reports depend on: the command, the Python,
the installed distributions and the content of every file git knows of (tracked, and
untracked but not ignored), plus a digest of each report and the command's exit code.
The command is skipped only when its last run passed (exit 0), all of that is unchanged
and every report is byte for byte the one that run wrote; a failure is never reused (a
flaky test gets its rerun). Anything else (an edit, a new
file, a report touched, no git, no stamp) runs the command again: this never vouches for
a report older than the tree. The stamp is removed before a run and written only after a pass
during which the tree did not change.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["fingerprint", "main"]


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def fingerprint(root: Path, command: Sequence[str]) -> str | None:
    """What the reports depend on, as one digest; None when git cannot list the tree."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    digest = hashlib.sha256()
    digest.update(json.dumps([list(command), sys.version, sys.executable]).encode())
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    digest.update("\n".join(dists).encode())
    for name in sorted(set(listed.decode("utf-8", "surrogateescape").split("\0")) - {""}):
        digest.update(f"\0{name}\0{_sha(root / name)}".encode())
    return digest.hexdigest()


def _reusable(stamp: Path, tree: str | None, reports: list[Path]) -> int | None:
    """The recorded exit code when the stamp vouches for these reports, else None."""
    if tree is None:
        return None
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("tree") != tree:
        return None
    digests = recorded.get("reports", {})
    if any(digests.get(str(r)) is None or digests.get(str(r)) != _sha(r) for r in reports):
        return None
    code = recorded.get("exit")
    return code if code == 0 else None  # only a pass is reused: a failure (a flake) runs again


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_promotion.evidence")
    parser.add_argument("--report", action="append", required=True, help="a report the run writes")
    parser.add_argument("--stamp", required=True, help="where the fingerprint is kept")
    parser.add_argument("command", nargs="+", help="the tool's argv, after --")
    args = parser.parse_args(argv)
    root = Path.cwd()
    reports = [Path(r) for r in args.report]
    stamp = Path(args.stamp)
    tree = fingerprint(root, args.command)
    code = _reusable(stamp, tree, reports)
    if code is not None:
        for report in reports:  # re-issued by this run: the command kind sees them as new
            os.utime(report)
        names = ", ".join(args.report)
        print(
            f"evidence: {names} are fresh for this tree (fingerprint {tree[:12] if tree else ''}): "
            f"not re-run, exit {code} replayed; delete {stamp} to run again",
            flush=True,
        )
        return code
    stamp.unlink(missing_ok=True)
    print(f"evidence: running {' '.join(args.command)}", flush=True)
    code = subprocess.run(args.command, check=False).returncode
    if (
        code == 0
        and tree is not None
        and fingerprint(root, args.command) == tree
        and all(map(os.path.isfile, reports))
    ):
        stamp.parent.mkdir(parents=True, exist_ok=True)
        record = {"tree": tree, "exit": code, "reports": {str(r): _sha(r) for r in reports}}
        stamp.write_text(json.dumps(record, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
