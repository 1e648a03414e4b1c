"""Keep secrets inside the process: passwords in URLs and DSNs, Authorization headers,
and the values of ``${VAR}`` substitutions are replaced by ``***`` in every text that
leaves it (messages, ids, reports, tracebacks).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable

__all__ = ["MASK", "SecretRegistry", "forms", "mask_subtest", "redact", "redact_url"]

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host
# The scheme is at most 32 characters: unbounded, a long run of letters (a minified line
# in a tool's output) cost quadratic time (6 s for 64 KiB). A match may start inside a run
# ("...stgresql://", "xhttps://", a cut): the password is masked all the same.
_URL_CREDENTIALS = r"(?P<head>[A-Za-z][A-Za-z0-9+.-]{0,31}://[^:/?#@\s]*:)(?P<pw>[^@/\s]+)(?=@)"
# libpq key/value DSN: password=secret or password='sec ret'
_DSN_CREDENTIALS = r"(?i)(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s'\"]+)"
# Authorization: Bearer xyz  /  'Authorization': 'Bearer xyz'  /  "authorization": "..."
_AUTH_HEADER = r"(?i)(?P<head>\b(?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)(?P<pw>[^'\"\n,}]+)"


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """A pattern compiled on first use: a run that never shows a URL, DSN or header with a
    password (most) does not pay the ~0.8 M instructions each costs to compile."""
    return re.compile(pattern)


def _mask_head(match: re.Match[str]) -> str:
    return match["head"] + MASK


# Secrets shorter than this are not searched for in free text: replacing every "1"
# would make messages unreadable (a ${VAR} of 1 or 2 characters is a config error unless
# the environment lists it as public). A value this short (3 characters) is masked where
# it stands as a whole token ("abc", not inside "abcdef"); longer ones wherever they are.
MIN_SECRET_LENGTH = 3
WHOLE_TOKEN_BELOW = 4


def redact_url(url: str) -> str:
    """``https://u:pw@h/x`` -> ``https://u:***@h/x``."""
    if "@" not in url:
        return url
    return _compiled(_URL_CREDENTIALS).sub(_mask_head, url)


# A truncated repr (pytest's saferepr, reprlib) keeps a value's head and tail around "...":
# a secret cut there is no longer found whole, so a piece of at least this many of its
# characters next to the cut is masked too.
CUT = "..."
MIN_FRAGMENT = 8


def _fragment(text: str, start: int, end: int, step: int, secret: str) -> int:
    """How many characters from the cut (``text[start:end]`` grows away from it by
    ``step``) form a substring of ``secret``: 0 when fewer than MIN_FRAGMENT do."""
    n = MIN_FRAGMENT
    if step < 0:
        if start - n < 0 or text[start - n : start] not in secret:
            return 0
        while start - n - 1 >= 0 and text[start - n - 1 : start] in secret:
            n += 1
    else:
        if text[start : start + n] not in secret or start + n > end:
            return 0
        while start + n + 1 <= end and text[start : start + n + 1] in secret:
            n += 1
    return n


def _mask_cut_fragments(text: str, secrets: list[str]) -> str:
    spans: list[tuple[int, int]] = []
    size = len(text)
    cut = text.find(CUT)
    while cut != -1:
        after = cut + len(CUT)
        for secret in secrets:
            n = _fragment(text, cut, size, -1, secret)
            if n:
                spans.append((cut - n, cut))
            n = _fragment(text, after, size, 1, secret)
            if n:
                spans.append((after, after + n))
        cut = text.find(CUT, cut + 1)
    if not spans:
        return text
    out, last = [], 0
    for begin, finish in sorted(spans):
        if finish <= last:
            continue
        if begin >= last:
            out.append(text[last:begin])
            out.append(MASK)
        last = finish
    out.append(text[last:])
    return "".join(out)


def _xml(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
    )


@functools.lru_cache(maxsize=4096)
def forms(secret: str) -> tuple[str, ...]:
    """Every form in which ``secret`` can be shown: as it is, stripped (a value with a
    trailing newline printed), and escaped as ``repr`` (a plain assert), ``repr`` of that
    (a repr inside a repr), JSON and XML show it; those of MIN_SECRET_LENGTH or more.
    """
    found = dict.fromkeys([secret, secret.strip()])
    for value in list(found):
        escaped = repr(value)[1:-1]
        found.update(dict.fromkeys([escaped, repr(escaped)[1:-1]]))
        found.update(dict.fromkeys([value.encode("unicode_escape").decode("ascii")]))
        found.update(
            dict.fromkeys([json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]])
        )
        found.update(dict.fromkeys([_xml(value)]))
    return tuple(f for f in found if len(f) >= MIN_SECRET_LENGTH)


@functools.lru_cache(maxsize=1024)
def _whole_token(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values (in every form :func:`forms` lists) and
    credential-shaped substrings by ``***``, and the pieces of a secret that a ``...``
    truncation cut.

    >>> redact("redis://:hunter22@db:6379/0 failed")
    'redis://:***@db:6379/0 failed'
    >>> redact("token='live-abcdefghij...qrstuvwxyz'", ["live-abcdefghijklmnopqrstuvwxyz"])
    "token='***...***'"
    """
    known = sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True)
    for secret in known:
        if len(secret) < WHOLE_TOKEN_BELOW:
            if secret in text:
                text = _whole_token(secret).sub(MASK, text)
        else:
            text = text.replace(secret, MASK)
    if known and CUT in text:
        longer = [s for s in known if len(s) > MIN_FRAGMENT]
        if longer:
            text = _mask_cut_fragments(text, longer)
    # Each pattern needs characters a text without them cannot hold: looked for first (a
    # fleet's 10,000 targets in one message, 1.4 MB: 0.15 s; the JUnit suite property of
    # 2,000 passing gates: the patterns took about 20 times as long as these checks). The
    # case-insensitive ones are searched in full in a text that is not ASCII, whose case
    # folding re knows better than lower() (with IGNORECASE U+017F matches "s").
    if "@" in text and "://" in text:
        text = _compiled(_URL_CREDENTIALS).sub(_mask_head, text)
    lowered = text.lower() if text.isascii() else None
    if lowered is None or ("=" in text and "password" in lowered):
        text = _compiled(_DSN_CREDENTIALS).sub(_mask_head, text)
    if lowered is None or "authorization" in lowered:
        text = _compiled(_AUTH_HEADER).sub(_mask_head, text)
    return text


def mask_subtest(report: object, secrets: Iterable[str]) -> None:
    """Mask a subtest report's ``msg`` and keyword arguments in place: pytest shows them
    in the report's head line (``SUBFAIL test_x [msg] (key='value')``) and JUnit name."""
    context = getattr(report, "context", None)
    msg, kwargs = getattr(context, "msg", None), getattr(context, "kwargs", None)
    if isinstance(msg, str):
        object.__setattr__(context, "msg", redact(msg, secrets))  # a frozen dataclass
    if isinstance(kwargs, dict) and kwargs:
        masked = {k: redact(v, secrets) if isinstance(v, str) else v for k, v in kwargs.items()}
        object.__setattr__(context, "kwargs", masked)


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
        m = _compiled(_URL_CREDENTIALS).search(url) if "@" in url else None
        if m:
            self.add(m["pw"])

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._values)
