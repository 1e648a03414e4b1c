"""A command with a deadline, its output bounded, and nothing of it left behind: what the
``command`` check kind, the security kind's bandit and the rollback run (nothing of pytest
here).

:func:`spawn` starts the command under a small launcher (``_reaper.py``) in a new session.
On Linux the launcher is a child subreaper: whatever the command starts, however deep and
even in a session of its own, stays below it, and is killed when the command exits or the
launcher is told to stop. The command's environment is the run's without the
``PROMOTION_*`` run variables: a ``pytest`` it runs is not a gate run of the same target
unless its own command line says ``--env``.

The pipes are read into buffers that keep the last ``cap`` bytes and count the rest, until
the command exits or the deadline passes; then everything it started is killed and what is
left in the pipes is read for at most ``GRACE`` seconds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "GRACE",
    "RUN_VARIABLE_PREFIX",
    "Tail",
    "child_environment",
    "collect",
    "kill_group",
    "spawn",
]

GRACE = 1.0  # seconds to read what is left in the pipes once the command has ended
POLL = 0.1  # how often a running command is checked for its exit
END_GRACE = 8.0  # seconds the launcher has to kill the tree before its group is SIGKILLed
RUN_VARIABLE_PREFIX = "PROMOTION_"  # PROMOTION_ENV, _VERSION, _PREVIOUS_VERSION, ...
_LAUNCHER = str(Path(__file__).with_name("_reaper.py"))


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a command the plugin starts: this process's, without the
    ``PROMOTION_*`` variables that make a pytest run a gate run (a command check running
    the unit tests with pytest under ``PROMOTION_ENV=dev`` started a dev gate run of the
    same config, which ran the same check, without end), then ``extra`` (the check's own
    ``env`` table, which may set one on purpose)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(RUN_VARIABLE_PREFIX)}
    env.update(extra or {})
    return env


def spawn(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (``argv[0]`` a path to an executable) under the launcher, in a new
    session, stdin closed. ``env`` defaults to :func:`child_environment`. Raises OSError
    when the launcher cannot start; a program that cannot be executed exits 127 with
    ``cannot start PROGRAM: reason`` on stderr; one that is not found raises
    FileNotFoundError here, as ``subprocess.Popen`` would."""
    env = dict(env) if env is not None else child_environment()
    program = argv[0] if argv else ""
    if not program or shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    return subprocess.Popen(
        [sys.executable, "-I", "-S", _LAUNCHER, *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,  # the launcher leads its own group: killed as a whole
    )


class Tail:
    """One pipe read into a bounded buffer: its last ``cap`` bytes and how many were written."""

    def __init__(self, fd: int, cap: int) -> None:
        self.fd = fd
        self.cap = cap
        self.data = bytearray()
        self.total = 0
        self.open = True

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk[-self.cap :]
        if len(self.data) > self.cap:
            del self.data[: len(self.data) - self.cap]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    def text(self) -> str:
        """The kept bytes as text, after ``...`` when the start was cut away: the cut may
        fall inside a secret, and ``redact()`` masks a secret's piece next to a ``...``."""
        text = self.data.decode("utf-8", "replace")
        return f"...{text}" if self.truncated else text


def collect(proc: subprocess.Popen[bytes], streams: list[Tail], timeout: float) -> int | None:
    """Read the command's pipes until it exits (its exit code) or ``timeout`` passes
    (None); then kill everything it started and read what is left for at most ``GRACE``."""
    deadline = time.monotonic() + timeout
    code: int | None = None
    with selectors.DefaultSelector() as selector:
        for stream in streams:
            selector.register(stream.fd, selectors.EVENT_READ, stream)

        def read(wait: float) -> None:
            for key, _ in selector.select(max(0.0, wait)):
                stream = key.data
                chunk = os.read(stream.fd, 65536)
                if chunk:
                    stream.add(chunk)
                else:
                    stream.open = False
                    selector.unregister(stream.fd)

        while (code := proc.poll()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if selector.get_map():
                read(min(left, POLL))
            else:  # every pipe is closed but the command still runs
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=min(left, POLL))
        kill_group(proc)
        until = time.monotonic() + GRACE
        while selector.get_map() and (left := until - time.monotonic()) > 0:
            read(left)
    return code


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """End everything the command started and reap it: the launcher (:func:`spawn`) is
    told to kill its whole tree (SIGTERM), then its process group is SIGKILLed, for a
    launcher that did not end in time or a command started without one."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=END_GRACE)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # unkillable (D state): give up
        proc.wait(timeout=5)
