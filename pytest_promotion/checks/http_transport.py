"""What bounds an HTTP exchange as a whole: a deadline watchdog over the request's sockets,
the connection pools that report their connections to it, and the one-time set-up a probe
pool does before its threads start.

One scheduler thread serves every watchdog (a ``threading.Timer`` per request cost a thread
start each, which 200 concurrent probes felt)."""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

__all__ = [
    "Watchdog",
    "adapter_class",
    "environment_ca_bundle",
    "prepare",
    "proxies_for",
    "tls_context",
]

_local = threading.local()


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
                    target=self._run, name="promotion-watchdog", daemon=True
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
            callback()


_scheduler = _Scheduler()


class Watchdog:
    """Shuts the sockets of a request down when its total deadline passes."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._done = False
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        self._token: int | None = None

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def watch(self, conn: Any) -> None:
        with self._lock:
            self._conns.append(conn)

    def _fire(self) -> None:
        import socket

        with self._lock:
            if self._done:
                return
            self.fired = True
            for conn in self._conns:
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    # the plain socket's shutdown: wakes a blocked read in another thread
                    with suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> Watchdog:
        self._token = _scheduler.schedule(self.deadline, self._fire)
        _local.watchdog = self
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        if self._token is not None:
            _scheduler.cancel(self._token)
        _local.watchdog = None


@cache
def adapter_class() -> type[Any]:
    """An HTTPAdapter whose connection pools report each connection to the watchdog."""
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def watched(conn: Any) -> Any:
        dog = getattr(_local, "watchdog", None)
        if dog is not None:
            dog.watch(conn)
        return conn

    class Pool(HTTPConnectionPool):
        def _get_conn(self, timeout: float | None = None) -> Any:
            return watched(super()._get_conn(timeout))

    class TLSPool(HTTPSConnectionPool):
        def _get_conn(self, timeout: float | None = None) -> Any:
            return watched(super()._get_conn(timeout))

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

        def build_connection_pool_key_attributes(
            self, request: Any, verify: Any, cert: Any = None
        ) -> Any:
            host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
            context = tls_context(verify) if host["scheme"] == "https" and cert is None else None
            if context is not None:  # the trust is in the context: nothing to load per connection
                pool.pop("ca_certs", None)
                pool.pop("ca_cert_dir", None)
                pool["ssl_context"] = context
            return host, pool

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
            # requests' checks and errors above stay; the shared context holds the trust
            if conn.conn_kw.get("ssl_context") is not None:
                conn.ca_certs = conn.ca_cert_dir = None

    return Adapter


def tls_context(verify: bool | str) -> ssl.SSLContext | None:
    """The client SSLContext for one trust setting (``verify`` as requests takes it), built
    once and shared by every connection that uses it. urllib3 otherwise builds one per
    connection and loads the CA bundle into it: ~90 ms of CPU per probe with a 144-
    certificate system bundle, which 200 concurrent HTTPS checks would queue behind under
    the GIL. A bundle rewritten on disk is loaded again. None when the bundle cannot be
    read: requests then reports the problem as it always has."""
    if verify is False:
        return _context(None, None)
    if verify is True:
        from requests.adapters import DEFAULT_CA_BUNDLE_PATH

        verify = DEFAULT_CA_BUNDLE_PATH
    try:
        info = os.stat(verify)
        return _context(verify, (info.st_mtime_ns, info.st_size, os.path.isdir(verify)))
    except (OSError, ValueError):  # ValueError: ssl found no certificate in the file
        return None


@lru_cache(maxsize=32)
def _context(where: str | None, stamp: tuple[int, int, bool] | None) -> ssl.SSLContext:
    import ssl

    from urllib3.util.ssl_ import create_urllib3_context

    if where is None:  # insecure = true: the reported way off
        return create_urllib3_context(cert_reqs=ssl.CERT_NONE)
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    if stamp is not None and stamp[2]:
        context.load_verify_locations(capath=where)
    else:
        context.load_verify_locations(cafile=where)
    return context


@cache
def environment_ca_bundle() -> str | None:
    """The CA bundle requests would take from the environment for ``verify=True``."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


@lru_cache(maxsize=4096)
def proxies_for(scheme: str, host: str, port: int | None) -> dict[str, str]:
    """The proxies the environment sets for one origin (``no_proxy`` honoured), worked out
    once per origin instead of on every request (requests' ``trust_env`` scans
    ``os.environ`` each time, a sixth of a probe's CPU)."""
    from requests.utils import get_environ_proxies

    netloc = f"[{host}]" if ":" in host else host
    return dict(get_environ_proxies(f"{scheme}://{netloc}:{port or ''}/"))


def prepare() -> None:
    """Import requests and build the adapter in the calling thread, before a probe pool's
    threads start (otherwise they queue on the import lock, one behind the other)."""
    import requests  # noqa: F401

    adapter_class()
    environment_ca_bundle()
