"""A bounded pool of daemon threads that runs probes ahead of their pytest items.

Daemon threads, not concurrent.futures.ThreadPoolExecutor: on Ctrl-C the interpreter must
not wait at exit for probes still blocked on a dead endpoint (each is bounded by its own
deadline, but "block within a second" cannot wait for a 30 s timeout).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["ProbePool"]

_STOP = object()


class ProbePool:
    """``submit(fn)`` returns a Future; at most ``concurrency`` run at once."""

    def __init__(self, concurrency: int, name: str = "promotion-probe") -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._concurrency = concurrency
        self._name = name
        self._pending: list[Future[Any]] = []
        self._closed = False
        self._taken = 0  # submitted items a thread has picked up (started or cancelled)
        self._progress = threading.Condition()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        if self._closed:
            raise RuntimeError("pool is closed")
        future: Future[Any] = Future()
        self._pending.append(future)
        self._queue.put((future, fn))
        if len(self._threads) < self._concurrency and len(self._threads) < len(self._pending):
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, fn = item
            with self._progress:
                self._taken += 1
                self._progress.notify_all()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # a probe's crash fails only its own item
                future.set_exception(exc)

    def wait_dispatched(self, timeout: float) -> bool:
        """Wait until every probe submitted so far has been picked up by a thread (or
        ``timeout`` seconds): whether they all were. Lets the caller keep its own CPU work
        (pytest's collection) off the GIL while the probes get their requests out."""
        with self._progress:
            return self._progress.wait_for(lambda: self._taken >= len(self._pending), timeout)

    def forget_done(self) -> None:
        """Drop the finished futures it keeps (a long-lived pool, e.g. the watch's over
        8,640 measurements, would otherwise keep every outcome)."""
        with self._progress:
            keep = [f for f in self._pending if not f.done()]
            self._taken -= len(self._pending) - len(keep)
            self._pending = keep

    def cancel_pending(self) -> int:
        """Cancel every probe not yet started; running ones end at their own deadline."""
        return sum(1 for f in self._pending if f.cancel())

    def close(self) -> None:
        """Stop the threads once the queue drains (never waits for them)."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)
