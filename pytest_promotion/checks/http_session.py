""":class:`BoundSession`: the HTTP session of the ``http`` check and of Python gates.

Every request is bounded by a total deadline (a watchdog shuts the socket down when it
passes, so a server trickling one byte a second fails on time), every body read by a
size cap; TLS is verified against the target's ``ca_bundle`` unless the target says
``insecure = true``; redirects are followed only within the same origin (scheme, host,
port), so credentials never travel to another host.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..redact import redact, redact_url
from .base import CheckFailed, Target
from .http_transport import (
    Watchdog,
    adapter_class,
    environment_ca_bundle,
    proxies_for,
)

if TYPE_CHECKING:
    import requests

__all__ = ["MAX_BODY_BYTES", "BoundSession", "session_for"]

MAX_BODY_BYTES = 1 << 20
MAX_REDIRECTS = 5
INSECURE = "TLS verification disabled (insecure = true)"
_SENSITIVE = re.compile(r"(?i)auth|token|key|secret|cookie|session|password")
_QUERY_SECRET = re.compile(
    r"(?i)([?&][^=&#\s]*(?:token|key|secret|password|auth|sig)[^=&#\s]*=)[^&#\s]+"
)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _seconds(budget: float) -> str:
    """A budget as people write it: 0.5, 2, 1800 (a deadline's leftover 0.499825 shows 0.5)."""
    return f"{round(budget, 2):g}"


def _hostport(url: str) -> str:
    _scheme, host, port = _origin(url)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BoundSession:
    """An HTTP session bound to one environment: base URL, deadline, trust, caps.

    ``get("/health")`` resolves the path against ``base_url``, verifies TLS with the
    target's CA bundle, bounds the whole exchange (connect, headers, body) by ``timeout``
    seconds, reads at most ``max_body_bytes`` and follows redirects only within the
    same scheme, host and port. Failures raise :class:`CheckFailed` with one redacted
    line (no chained traceback that could carry a secret).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 5.0,
        verify: bool | str = True,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        headers: Mapping[str, str] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        import requests

        self.base_url = base_url
        self.timeout = timeout
        self.verify = verify
        self.max_body_bytes = max_body_bytes
        self.max_redirects = max_redirects
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "pytest-promotion"
        self._session.headers.update(headers or {})
        # What trust_env would read (proxies, CA bundle) is applied per origin from a cache
        # (http_transport); netrc credentials are never sent to a probed endpoint.
        self._session.trust_env = False
        adapter = adapter_class()(max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        sensitive = [v for k, v in self._session.headers.items() if _SENSITIVE.search(k)]
        self.secrets = (*secrets, *(str(v) for v in sensitive))
        self.warnings = [] if verify is not False else [INSECURE]

    def url(self, path: str) -> str:
        """``path`` relative to ``base_url`` (a full URL is used as it is)."""
        if "://" in path or not self.base_url:
            return path
        return urljoin(self.base_url.rstrip("/") + "/", path.lstrip("/"))

    def redact(self, text: str) -> str:
        text = _QUERY_SECRET.sub(r"\1***", redact_url(text))
        return redact(text, self.secrets)

    def request(
        self, method: str, url: str, *, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        """The response, its body read (``.content``, ``.json()`` work), or CheckFailed.

        A redirect this session does not follow (to another scheme, host or port) is a
        failure, not a 3xx response that ``response.ok`` would call a success; with
        ``allow_redirects=False`` every redirect is returned as it is."""
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        follow = kwargs.pop("allow_redirects", True)
        if not follow:
            kwargs["expect_status"] = range(300, 400)
        response, truncated = self.fetch(method, url, timeout=timeout, **kwargs)
        if truncated:
            raise CheckFailed(self.redact(f"response body larger than {self.max_body_bytes} bytes"))
        if follow and response.is_redirect:
            raise CheckFailed(self.redact(f"{response.status_code} {response.reason}"))
        return response

    def fetch(
        self,
        method: str,
        url: str,
        *,
        timeout: float | None = None,
        expect_status: Collection[int] = (),
        **kwargs: Any,
    ) -> tuple[requests.Response, bool]:
        """Like :meth:`request`; a body over the cap is cut there, and the flag says so.

        A redirect whose status is in ``expect_status`` is returned, not followed.
        """
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        import warnings

        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout < float("inf")
        ):
            raise ValueError(f"timeout: expected a number of seconds > 0, found {timeout!r}")
        budget = self.timeout if timeout is None else timeout
        kwargs.pop("allow_redirects", None)
        kwargs.pop("stream", None)
        if "proxies" in kwargs:
            raise ValueError("proxies cannot be set per request: they come from the environment")
        self._remember_credentials(kwargs)
        if kwargs.pop("verify", self.verify) != self.verify:
            raise ValueError("verify cannot be changed per request: set insecure = true instead")
        # verify=True means the system store, or the bundle the environment names (as
        # requests does with trust_env); a configured ca_bundle or insecure wins.
        kwargs["verify"] = (environment_ca_bundle() or True) if self.verify is True else self.verify
        start = time.monotonic()
        with Watchdog(start + budget) as dog, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
            response = self._send(dog, method.upper(), self.url(url), budget, expect_status, kwargs)
            response.elapsed = type(response.elapsed)(seconds=time.monotonic() - start)
            try:
                body, truncated = self._read(dog, response, budget)
            finally:
                response.close()
        response._content = body
        return response, truncated

    def _remember_credentials(self, kwargs: Mapping[str, Any]) -> None:
        """The credentials a request carries are secrets before it is sent: requests may
        refuse a header value (a token read with its trailing newline) and show it."""
        values = [
            str(v) for k, v in (kwargs.get("headers") or {}).items() if _SENSITIVE.search(str(k))
        ]
        auth = kwargs.get("auth")
        if isinstance(auth, tuple) and len(auth) == 2:
            values.append(str(auth[1]))
        for value in values:
            # the whole value, and its words that look like tokens ("Bearer <token>")
            pieces = [value, value.strip(), *(w for w in value.split() if len(w) >= 8)]
            self.secrets += tuple(p for p in dict.fromkeys(pieces) if p and p not in self.secrets)

    def _send(
        self,
        dog: Watchdog,
        method: str,
        url: str,
        budget: float,
        expected: Collection[int],
        kwargs: dict[str, Any],
    ) -> requests.Response:
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        for _hop in range(self.max_redirects + 1):
            with self._errors(dog, url, budget, "no response"):
                response = self._session.request(
                    method,
                    url,
                    allow_redirects=False,
                    stream=True,
                    timeout=dog.remaining(),
                    proxies=proxies_for(*_origin(url)),
                    **kwargs,
                )
            sent = response.request.headers  # incl. Basic auth built from URL credentials
            sent_values = (str(v) for k, v in sent.items() if _SENSITIVE.search(k))
            self.secrets += tuple(v for v in sent_values if v not in self.secrets)
            location = response.headers.get("Location")
            if not response.is_redirect or not location or response.status_code in expected:
                return response
            following = urljoin(url, location)
            if _origin(following) != _origin(url):
                what = "scheme" if _origin(following)[0] != _origin(url)[0] else "host"
                response.reason = f"redirect to {following} not followed (another {what})"
                return response
            response.close()
            if response.status_code in (301, 302, 303) and method not in ("GET", "HEAD"):
                method = "GET"
                for key in ("data", "json", "files"):
                    kwargs.pop(key, None)
            url = following
        raise CheckFailed(self.redact(f"too many redirects (more than {self.max_redirects})"))

    def _read(
        self, dog: Watchdog, response: requests.Response, budget: float
    ) -> tuple[bytes, bool]:
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        chunks: list[bytes] = []
        size = 0
        with self._errors(dog, response.url, budget, "response body not complete"):
            for chunk in response.iter_content(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_body_bytes:
                    return b"".join(chunks)[: self.max_body_bytes], True
        if dog.fired:
            raise CheckFailed(f"response body not complete within {_seconds(budget)} s")
        return b"".join(chunks), False

    @contextmanager
    def _errors(self, dog: Watchdog, url: str, budget: float, late: str) -> Iterator[None]:
        """Turn whatever requests raises into one actionable, redacted line."""
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        import requests

        try:
            yield
        except requests.RequestException as exc:
            raise CheckFailed(
                self.redact(_describe(exc, url, budget, late, dog.fired, self.verify))
            ) from None
        except OSError as exc:  # e.g. requests' "Could not find a suitable TLS CA bundle"
            raise CheckFailed(self.redact(f"request to {_hostport(url)} failed: {exc}")) from None
        if dog.fired:
            raise CheckFailed(f"{late} within {_seconds(budget)} s")

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> requests.Response:
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        __tracebackhide__ = True  # pytest shows the gate's frame, not ours
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> BoundSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(
    exc: BaseException, url: str, budget: float, late: str, fired: bool, verify: bool | str
) -> str:
    import requests

    from .tls_errors import describe_ssl_error, walk

    where = _hostport(url)
    if fired or isinstance(exc, requests.ReadTimeout):
        return f"{late} within {_seconds(budget)} s"
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection to {where} within {_seconds(budget)} s"
    if isinstance(exc, requests.exceptions.SSLError):
        ca = verify if isinstance(verify, str) else None
        return describe_ssl_error(exc, _origin(url)[1], ca) or f"TLS error with {where}: {exc}"
    causes = list(walk(exc))
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return f"connection refused by {where}"
    if any(type(e).__name__ == "NameResolutionError" for e in causes):
        return f"cannot resolve host {_origin(url)[1]}"
    if any(type(e).__name__ == "RemoteDisconnected" for e in causes):
        return f"{where} closed the connection without a response"
    if any(isinstance(e, TimeoutError) for e in causes):
        return f"{late} within {_seconds(budget)} s"
    if any(isinstance(e, ConnectionResetError) for e in causes):
        hint = ""
        if _origin(url)[0] == "http":  # plain HTTP to a port that speaks TLS, most often
            hint = ": if it serves TLS, use https://"
        return f"{where} reset the connection{hint}"
    return f"request to {url} failed: {type(exc).__name__}: {exc}"


def session_for(target: Target, **overrides: Any) -> BoundSession:
    """A :class:`BoundSession` for ``target``: its base URL, timeout, trust and secrets."""
    verify: bool | str = str(target.path(target.ca_bundle)) if target.ca_bundle else True
    options: dict[str, Any] = {
        "timeout": target.timeout,
        "verify": False if target.insecure else verify,
        "secrets": target.secrets,
    }
    options.update(overrides)
    return BoundSession(target.base_url, **options)
