"""The watch window after a promote, and relative criteria against the last good releases.

See docs/watch.md. :func:`run_watch` runs one watch from the config; the engine
(:class:`Watch`) knows nothing of pytest.
"""

from __future__ import annotations

from .engine import Watch, WatchResult
from .runner import Stop, WatchRequest, on_signals, run_watch, settings_for
from .settings import WatchSettings, parse_settings

__all__ = [
    "Stop",
    "Watch",
    "WatchRequest",
    "WatchResult",
    "WatchSettings",
    "on_signals",
    "parse_settings",
    "run_watch",
    "settings_for",
]
