"""Security findings as the bandit and sarif kinds count them, and the report files they
come from (bandit JSON, SARIF, the baseline): size-capped, JSON-checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import CheckFailed

__all__ = ["LEVELS", "MAX_REPORT", "Finding", "load_json", "norm_path"]

MAX_REPORT = 256 * 1024 * 1024
LEVELS = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Finding:
    rule: str
    file: str
    line: int | None
    severity: str  # one of LEVELS
    text: str = ""
    aliases: tuple[str, ...] = ()  # other ids of the same advisory (CVE-..., GHSA-...)

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def norm_path(path: str, rootdir: Path) -> str:
    """A finding's file as a path relative to the rootdir, the way the baseline names it."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    p = Path(path)
    if p.is_absolute() and p.resolve().is_relative_to(rootdir.resolve()):
        p = p.resolve().relative_to(rootdir.resolve())
    text = p.as_posix()
    while text.startswith("./"):
        text = text[2:]
    return text


def load_json(path: Path, what: str) -> Any:
    """A report file's JSON; missing, oversized or not JSON: the check fails."""
    if not path.is_file():
        raise CheckFailed(f"{what} {path} not found")
    if path.stat().st_size > MAX_REPORT:
        raise CheckFailed(f"{what} {path} is larger than {MAX_REPORT // 2**20} MiB")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckFailed(f"{what} {path} is not valid JSON: {exc}") from None
