"""Who runs, from where, on which bits: the actor, the CI run, git, the config's hash."""

from __future__ import annotations

import getpass
import hashlib
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

__all__ = ["actor", "ci_run_url", "config_hash", "git_facts", "parse_duration"]

ACTOR_VARS = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")
_UNITS = {"s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def actor(environ: Mapping[str, str]) -> tuple[str, str]:
    """(identity, where it came from): the CI's variables first, else the OS user."""
    for name in ACTOR_VARS:
        value = environ.get(name, "").strip()
        if value:
            return value, name
    try:
        return getpass.getuser(), "OS user"
    except (KeyError, OSError):  # no passwd entry (a container with a random uid)
        return "unknown", "no CI variable, no OS user name"


def ci_run_url(environ: Mapping[str, str]) -> str | None:
    """The CI run's page, when the CI says it: GitHub Actions, GitLab CI, Jenkins."""
    if environ.get("GITHUB_RUN_ID") and environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
    return environ.get("CI_JOB_URL") or environ.get("BUILD_URL") or None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()[:200]
    return out if done.returncode == 0 and out else None


def git_facts(cwd: Path) -> tuple[str | None, str | None]:
    """(``git describe --tags --always``, the commit) when ``cwd`` is in a git repository."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None, None
    return _git(["describe", "--tags", "--always"], cwd), commit


def config_hash(path: Path | None) -> str | None:
    """sha256 of the config file as read: which rules this decision was made under."""
    if path is None:
        return None
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def parse_duration(value: object, where: str) -> float:
    """``90m``, ``24h``, ``7d``, ``30s`` or a number of seconds -> seconds (> 0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value)) if isinstance(value, str) else None
        if m is None:
            raise ValueError(f"{where}: expected a duration like 90m, 24h or 7d, found {value!r}")
        seconds = float(m[1]) * _UNITS[m[2]]
    if not seconds > 0:
        raise ValueError(f"{where}: expected a duration > 0, found {value!r}")
    return seconds
