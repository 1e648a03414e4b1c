"""One daemon thread that calls each callback when its deadline passes: what shuts a late
probe's socket down (HTTP watchdogs, TLS handshakes). A ``threading.Timer`` per request
cost a thread start each, which 200 concurrent probes felt."""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

__all__ = ["SocketDeadline", "cancel", "run_within", "schedule"]


class _Scheduler:
    """A single daemon thread that calls each callback when its deadline passes."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._live: set[int] = set()
        self._counter = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, deadline: float, callback: Callable[[], None]) -> int:
        with self._cv:
            token = next(self._counter)
            earliest = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, token, callback))
            self._live.add(token)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="promotion-deadlines", daemon=True
                )
                self._thread.start()
            elif earliest:  # otherwise the thread already wakes before this deadline
                self._cv.notify()
            return token

    def cancel(self, token: int) -> None:
        with self._cv:
            if token in self._live:  # not fired yet
                self._cancelled.add(token)

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._heap and self._heap[0][1] in self._cancelled:
                    token = heapq.heappop(self._heap)[1]
                    self._cancelled.discard(token)
                    self._live.discard(token)
                if not self._heap:
                    self._cv.wait(timeout=5.0)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                deadline, _, callback = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cv.wait(timeout=wait)
                    continue
                self._live.discard(heapq.heappop(self._heap)[1])
            try:
                callback()
            except Exception as exc:  # a bug; it must not stop every other probe's deadline
                sys.stderr.write(f"pytest-promotion: a deadline callback failed: {exc!r}\n")


_scheduler = _Scheduler()
_T = TypeVar("_T")


def schedule(deadline: float, callback: Callable[[], None]) -> int:
    """Call ``callback`` (in the deadline thread) at monotonic time ``deadline``; a token."""
    return _scheduler.schedule(deadline, callback)


def cancel(token: int) -> None:
    """The callback of ``token`` will not be called (if it has not been already)."""
    _scheduler.cancel(token)


class SocketDeadline:
    """Shuts a client library's connection down when ``deadline`` (monotonic) passes, so a
    read or write blocked in any thread (libpq, redis-py) returns at once with an error
    instead of waiting on a server that stopped answering. Holds its own duplicate of the
    descriptor: the shutdown reaches the right socket even if the library has closed its
    descriptor and the number was reused. ``fired`` tells the caller why the read failed.

    >>> with SocketDeadline(time.monotonic() + 2.0, conn.fileno()) as guard: ...
    """

    def __init__(self, deadline: float, fileno: int) -> None:
        self.deadline = deadline
        self.fired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = socket.socket(fileno=os.dup(fileno))
        self._token: int | None = None

    def _fire(self) -> None:
        with self._lock:
            if self._sock is None:
                return
            self.fired = True
            with suppress(OSError):  # already closed by the peer: the read fails on its own
                self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> SocketDeadline:
        self._token = schedule(self.deadline, self._fire)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            cancel(self._token)
        with self._lock:
            if self._sock is not None:
                self._sock.close()  # our duplicate only
                self._sock = None


def run_within(work: Callable[[], _T], deadline: float, name: str) -> _T:
    """``work()`` in a daemon thread, waited for until ``deadline`` (monotonic): for a C call
    nothing can interrupt, such as a host name lookup (getaddrinfo waits out the resolver's
    own timeouts: 10 s with glibc's defaults). TimeoutError when it is still running (the
    thread finishes on its own); what ``work`` raised is raised here."""
    result: list[_T] = []
    error: list[BaseException] = []

    def call() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    worker = threading.Thread(target=call, name=name, daemon=True)
    worker.start()
    worker.join(max(deadline - time.monotonic(), 0.001))
    if worker.is_alive():
        raise TimeoutError(f"{name}: still running at the deadline")
    if error:
        raise error[0]
    return result[0]
