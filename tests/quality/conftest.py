"""Fixtures of the quality-check tests: small generated projects, the real tools."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_promotion.checks.base import Target
from tests.support import child_environ

DATA = Path(__file__).parent.parent / "data"

Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def target(tmp_path: Path) -> Target:
    return Target(env="dev", rootdir=tmp_path, secrets=("hunter2-secret",))


def python(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``sys.executable`` with ``args`` in ``cwd``; fail the test if it fails."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=child_environ(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
