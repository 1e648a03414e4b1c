"""Text from outside (tool output, file names from scanner reports, HTTP bodies and
headers, what a test printed) made harmless for the place it is shown.

A file name with a newline printed a forged ``decision: PROMOTE`` line under the real
BLOCK; an ANSI escape rewrote the terminal; a ``::error::`` line became a GitHub workflow
command; raw HTML went into the step summary. So:

- :func:`one_line` (a table cell, a reason, a JUnit property): every control character,
  the newline included, is shown as an escape (``\\n``, ``\\x1b``), as are the Unicode
  characters that reorder or break lines (bidi overrides, U+2028);
- :func:`block` (captured output, an output tail, a traceback): the same, newlines and
  tabs kept;
- both defuse GitHub workflow commands: a line starting with ``::`` and ``##[`` anywhere
  (the runner reads both from a step's output) are shown with an escaped first character;
- :func:`markdown` (the step summary): :func:`one_line`, then HTML and Markdown escaped.

Text that needs none of this is returned as it is (the same object).

>>> one_line("src/a.py\\ndecision: PROMOTE")
'src/a.py\\\\ndecision: PROMOTE'
>>> block("ok\\n::error::forged")
'ok\\n\\\\x3a:error::forged'
"""

from __future__ import annotations

import functools
import html
import re
from typing import Any

__all__ = ["OneLineWriter", "block", "markdown", "one_line"]

# C0 controls, DEL, C1 controls (U+009B is a one-character CSI), and the characters that
# reorder text (bidi embeddings, overrides and isolates, marks) or end a line (U+2028/9).
_BIDI_AND_BREAKS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_CONTROL = f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_BREAKS}]"
_CONTROL_IN_BLOCK = f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_AND_BREAKS}]"
# The runner trims a line before it looks for "::"; "##[" (the old syntax) may be anywhere.
_WORKFLOW = re.compile(r"^(\s*):(?=:)|#(?=#\[)", re.MULTILINE)
_MARKDOWN = re.compile(r"([\\`*_\[\]~|])")


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    if match[0] == "\n":
        return "\\n"
    if match[0] == "\r":
        return "\\r"
    if match[0] == "\t":
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _defuse(match: re.Match[str]) -> str:
    return f"{match[1]}\\x3a" if match[0].endswith(":") else "\\x23"


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # On first use: compiling a class of Unicode ranges costs ~2.5 M instructions, which
    # a run whose text is all printable (the common case) never needs to pay.
    return re.compile(pattern)


def _neutralise(text: str, control: str) -> str:
    # Every character of the control classes is unprintable (Cc, Cf, Zl, Zp), so printable
    # text has none: str.isprintable() answers without the pattern.
    if not text.isprintable():
        text = _compiled(control).sub(_escape, text)
    if "::" in text or "##[" in text:
        text = _WORKFLOW.sub(_defuse, text)
    return text


def one_line(text: str) -> str:
    """``text`` on one line, every control character and workflow command made visible."""
    return _neutralise(text, _CONTROL)


def block(text: str) -> str:
    """``text`` with its lines kept, every other control character (a carriage return,
    ANSI escapes) and every workflow command made visible."""
    return _neutralise(text, _CONTROL_IN_BLOCK)


class OneLineWriter:
    """A terminal writer whose every line is :func:`one_line`: the plugin's own lines are
    plain, so only what came from outside in them changes."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None:
        self._writer.write_sep(sep, one_line(title) if title else title, **markup)

    def write_line(self, line: str, **markup: bool) -> None:
        self._writer.write_line(one_line(line), **markup)


def markdown(text: str) -> str:
    """``text`` for a Markdown table cell or list item: one line, HTML and Markdown
    syntax escaped, so it renders as the characters it is."""
    return _MARKDOWN.sub(r"\\\1", html.escape(one_line(text), quote=False))
