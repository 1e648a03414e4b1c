"""Helpers shared by the project's tests (not a conftest: import what you use)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_binary(name: str, *extra_dirs: str) -> str:
    """The path of a server binary or tool the test needs.

    Missing locally: the test is skipped with a visible reason. Missing under CI=true:
    the test fails, because .ci/run is supposed to have installed it.
    """
    path = shutil.which(name)
    if path is None:
        for d in extra_dirs:
            candidate = Path(d) / name
            if candidate.exists():
                path = str(candidate)
                break
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def child_environ(**extra: str) -> dict[str, str]:
    """The environment for a tool or pytest run started by a test: without the markers of
    the outer run (xdist worker, pytest-cov subprocess hooks, a target environment), so a
    nested pytest-benchmark does not think it runs under xdist and disable itself."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_XDIST", "COV_CORE_", "PROMOTION_"))
        and k not in ("PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")
    }
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
