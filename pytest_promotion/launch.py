"""Environments that start their own target: ``launch``, ``ready``, ``teardown``.

    [environments.dev]
    launch  = ["docker", "compose", "-f", "docker-compose.dev.yml", "up", "-d", "--wait"]
    teardown = ["docker", "compose", "-f", "docker-compose.dev.yml", "down"]

    [environments.dev]                 # a server that stays in the foreground
    launch = ["{python}", "-m", "pytest_promotion.demo", "serve", "--env-file", ".promotion/demo.env"]
    ready  = ["{python}", "-m", "pytest_promotion.demo", "ready", ".promotion/demo.env"]
    dotenv = ".promotion/demo.env"     # what the target wrote: read once it is ready

Before the environment is resolved (so its dotenv file may be one the target writes),
``launch`` starts in its own process group, output to ``.promotion/launch-ENV.log``.
It is ready when ``ready`` (polled, each try bounded) exits 0, or, without ``ready``,
when ``launch`` itself exits 0 (``up -d --wait``). Not ready within ``ready_timeout``
(default 60 s), or ``launch`` failing, ends the run before any gate: the placeholder
report says block, and the error names the reason and the log's last lines. At the end
of the run the launched group is stopped (SIGTERM, then SIGKILL) and ``teardown`` runs.
Placeholders: ``{python}``, ``{env}``. Nothing runs on xdist workers nor in a plan run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["DEFAULT_READY_TIMEOUT", "KEYS", "Launched", "launch_target"]

# The keys this module adds to [environments.NAME] (schema.ENV_KEYS holds them too).
KEYS = {"launch": "argv", "ready": "argv", "ready_timeout": "number", "teardown": "argv"}
DEFAULT_READY_TIMEOUT = 60.0
READY_TRY_TIMEOUT = 10.0  # one readiness try
TEARDOWN_TIMEOUT = 120.0
STOP_GRACE = 10.0  # SIGTERM -> SIGKILL
LOG_TAIL_LINES = 15
LOG_TAIL_BYTES = 64 * 1024


class LaunchError(Exception):
    """The target did not become ready: one line plus the log's last lines."""


def _argv(value: str | Sequence[str], env: str) -> list[str]:
    import shlex

    words = shlex.split(value) if isinstance(value, str) else list(value)
    return [w.replace("{python}", sys.executable).replace("{env}", env) for w in words]


def log_tail(path: Path) -> str:
    """The last lines of the target's log (at most LOG_TAIL_BYTES are read)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    lines = text.splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(f"  | {line}" for line in lines) or "  | (empty)"


class Launched:
    """A started target: ``wait_ready()``, then ``stop()`` at the end of the run."""

    def __init__(self, table: Mapping[str, Any], env: str, rootdir: Path, where: str) -> None:
        self.env, self.rootdir, self.where = env, rootdir, where
        self.argv = _argv(table["launch"], env)
        self.ready = _argv(table["ready"], env) if "ready" in table else None
        self.teardown = _argv(table["teardown"], env) if "teardown" in table else None
        self.timeout = float(table.get("ready_timeout", DEFAULT_READY_TIMEOUT))
        self.log = rootdir / ".promotion" / f"launch-{env}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    cwd=self.rootdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LaunchError(f"cannot start {self.argv[0]}: {exc.strerror or exc}") from None

    def wait_ready(self) -> float:
        """Seconds it took; LaunchError when it failed or did not get ready in time."""
        assert self.proc is not None
        started = time.monotonic()
        deadline = started + self.timeout
        while True:
            code = self.proc.poll()
            if code not in (None, 0):
                raise LaunchError(f"{self.argv[0]} exited with {code} before it was ready")
            if self.ready is None and code == 0:
                return time.monotonic() - started
            if self.ready is not None and self._ready_once(deadline):
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                what = "readiness check" if self.ready else f"{self.argv[0]} (no 'ready' check)"
                raise LaunchError(f"not ready within {self.timeout:g} s: {what} never succeeded")
            time.sleep(0.2)

    def _ready_once(self, deadline: float) -> bool:
        assert self.ready is not None
        left = max(0.1, min(READY_TRY_TIMEOUT, deadline - time.monotonic()))
        try:
            return self._run_logged(self.ready, left) == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def _run_logged(self, argv: list[str], timeout: float) -> int:
        """Run ``argv`` in the rootdir, its output appended to the log: its exit code."""
        with self.log.open("ab") as log:
            return subprocess.run(
                argv,
                cwd=self.rootdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            ).returncode

    def stop(self) -> None:
        """Stop the launched group (SIGTERM, SIGKILL after STOP_GRACE), then ``teardown``."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=5)
        if self.teardown is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._run_logged(self.teardown, TEARDOWN_TIMEOUT)


def launch_target(config: pytest.Config, env: str) -> None:
    """Start ``env``'s target when its table has ``launch`` (on the controller only)."""
    if hasattr(config, "workerinput") or config.getoption("promotion_watch_gates", None):
        return  # a worker, or the watch's run of its Python gates (the target is up)
    from .environment import canonical
    from .run import run_config

    promotion = run_config(config)
    name = promotion.chain_name(env) or canonical(env)
    table = promotion.tables.get(name, {})
    if "launch" not in table:
        return
    where = f"{promotion.label}: [environments.{name}] launch"
    launched = Launched(table, name, promotion.rootdir, where)
    config.add_cleanup(launched.stop)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"promotion: launching {name}'s target: {' '.join(launched.argv)}")
    try:
        launched.start()
        took = launched.wait_ready()
    except LaunchError as exc:
        launched.stop()
        raise pytest.UsageError(
            f"{where}: {exc} (block: no gate ran); last lines of {launched.log}:\n"
            f"{log_tail(launched.log)}"
        ) from None
    if reporter is not None:
        reporter.write_line(f"promotion: {name}'s target is ready ({took:.1f} s)")
