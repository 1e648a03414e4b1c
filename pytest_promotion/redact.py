"""Keep secrets inside the process: passwords in URLs and DSNs, Authorization headers,
and the values of ``${VAR}`` substitutions are replaced by ``***`` in every text that
leaves it (messages, ids, reports, tracebacks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "SecretRegistry", "redact", "redact_url"]

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^@/\s]+)(?=@)")
# libpq key/value DSN: password=secret or password='sec ret'
_DSN_PASSWORD = re.compile(r"(?i)(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s'\"]+)")
# Authorization: Bearer xyz  /  'Authorization': 'Bearer xyz'  /  "authorization": "..."
_AUTH_HEADER = re.compile(
    r"(?i)(?P<head>\b(?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)(?P<pw>[^'\"\n,}]+)"
)
# Secrets shorter than this are not searched for in free text: replacing every "1"
# would make messages unreadable, and such values are not secrets anyone relies on.
MIN_SECRET_LENGTH = 4


def redact_url(url: str) -> str:
    """``https://u:pw@h/x`` -> ``https://u:***@h/x``."""
    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK, url)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and credential-shaped substrings by ``***``.

    >>> redact("redis://:hunter22@db:6379/0 failed")
    'redis://:***@db:6379/0 failed'
    """
    for secret in sorted(
        {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
    ):
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    text = _DSN_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return _AUTH_HEADER.sub(lambda m: m["head"] + MASK, text)


class SecretRegistry:
    """The secrets of one run: every value that came from a ``${VAR}`` or a URL password."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self.add(*values)

    def add(self, *values: str) -> None:
        for value in values:
            if value:
                self._values.add(value)

    def add_from_url(self, url: str) -> None:
        m = _URL_PASSWORD.search(url)
        if m:
            self.add(m["pw"])

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._values)
