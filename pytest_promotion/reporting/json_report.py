"""The JSON decision file, always replaced atomically."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from ..atomic import replace_file

__all__ = ["placeholder", "write_atomic"]

SCHEMA = 1


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` so that readers see the old file or the new one, never half of one."""
    # Indented for a person when small; compact when large. json.dumps, not json.dump:
    # only dumps uses the C encoder (dump encodes in Python and writes every token:
    # ~25 us a gate, most of what the report cost a 2,000-gate run).
    indent = 2 if len(data.get("gates", ())) <= 200 else None
    text = json.dumps({"schema": SCHEMA, **data}, indent=indent)
    # Only a regular file is replaced (never /dev/null or a FIFO), and a missing
    # directory is an error, never created: both are checked at start, and again here.
    if path.exists() and not path.is_file():
        raise OSError(errno.EEXIST, "not a regular file")
    # mkstemp makes the file 0600: a CI step uploading it as another user could not read
    # it. The report holds no secret (masked): readable like any build output, or as the
    # file it replaces was.
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o644
    replace_file(path, text + "\n", mode=mode)


def placeholder(environment: str | None, version: str | None) -> dict[str, Any]:
    """What the report says while the run is going: a run killed now must not promote."""
    return {
        "decision": "block",
        "environment": environment,
        "version": version,
        "rollback_command": None,
        "reasons": ["the gate run did not finish (killed or still running)"],
        "gates": [],
        "waivers": [],
    }
