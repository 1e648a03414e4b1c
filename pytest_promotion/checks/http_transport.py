"""What bounds an HTTP exchange as a whole: a deadline watchdog over the request's sockets
(fired by the shared :mod:`.deadlines` thread), the connection pools that report their
connections to it, the shared TLS trust, and the one-time set-up a probe pool does before
its threads start."""

from __future__ import annotations

import os
import threading
import time
from contextlib import suppress
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from . import deadlines

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
        self._token = deadlines.schedule(self.deadline, self._fire)
        _local.watchdog = self
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        if self._token is not None:
            deadlines.cancel(self._token)
        _local.watchdog = None


def _watched(conn: Any) -> Any:
    dog = getattr(_local, "watchdog", None)
    if dog is not None:
        dog.watch(conn)
    return conn


@cache
def _watched_pool(pool_class: type[Any]) -> type[Any]:
    """``pool_class`` whose connections are reported to the request's watchdog."""

    def _get_conn(self: Any, timeout: float | None = None) -> Any:
        return _watched(pool_class._get_conn(self, timeout))

    return type(f"Watched{pool_class.__name__}", (pool_class,), {"_get_conn": _get_conn})


def _watch_pools(manager: Any) -> Any:
    """Make every connection pool ``manager`` creates report to the watchdog: the direct
    one and each proxy manager (HTTP_PROXY: requests makes one per proxy, with pools of
    its own, which the deadline did not reach; a trickling proxy ran a 2 s check for as
    long as it trickled)."""
    classes = manager.pool_classes_by_scheme
    if not getattr(manager, "_promotion_watched", False):
        manager.pool_classes_by_scheme = {k: _watched_pool(v) for k, v in classes.items()}
        manager._promotion_watched = True
    return manager


@cache
def adapter_class() -> type[Any]:
    """An HTTPAdapter whose connection pools, direct or through a proxy, report each
    connection to the watchdog."""
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            _watch_pools(self.poolmanager)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            return _watch_pools(super().proxy_manager_for(proxy, **proxy_kwargs))

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
