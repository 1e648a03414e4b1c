"""A command in its own process group, with a deadline and its output bounded: what the
``command`` check kind and the rollback both run (nothing of pytest here).

The pipes are read into buffers that keep the last ``cap`` bytes and count the rest, until
the command exits or the deadline passes; then its whole process group is killed and what
is left in the pipes is read for at most ``GRACE`` seconds: a process that left the group
(``setsid``) and still holds a pipe is not waited for.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time

__all__ = ["GRACE", "Tail", "collect", "kill_group"]

GRACE = 1.0  # seconds to read what is left in the pipes once the command has ended
POLL = 0.1  # how often a running command is checked for its exit


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
    (None); then kill its process group and read what is left for at most ``GRACE``."""
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
    """SIGKILL the command's process group (it leads it: ``start_new_session``) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # unkillable (D state): give up
        proc.wait(timeout=5)
