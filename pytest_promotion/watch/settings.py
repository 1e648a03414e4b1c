"""The watch window's settings: ``watch = { duration = "30m", interval = "60s", ... }`` on
an environment, or ``--promotion-watch DURATION`` / ``promotion watch --duration``.

Every duration is parsed (``90s``, ``30m``, ``24h``, ``7d`` or a number of seconds) and
bounded: a window of at most 7 days, at most 100,000 measurements, an interval of at least
10 ms (tests) and at most the window. Mistakes are one line naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..ledger.identity import parse_duration

__all__ = ["KEYS", "MAX_DURATION", "MAX_MEASUREMENTS", "WatchSettings", "parse_settings"]

MAX_DURATION = 7 * 86400.0
MAX_MEASUREMENTS = 100_000
MIN_INTERVAL = 0.01
MAX_GATE_TIMEOUT = 3600.0
KEYS = (
    "duration",
    "interval",
    "initial_delay",
    "failure_limit",
    "consecutive_error_limit",
    "gate_timeout",
    "python_gates",
)


@dataclass(frozen=True)
class WatchSettings:
    """Argo Rollouts' analysis settings, as the watch uses them."""

    duration: float = 1800.0
    interval: float = 60.0
    initial_delay: float = 0.0
    failure_limit: int = 0  # more failed measurements than this: rollback
    consecutive_error_limit: int = 4  # more errors in a row than this: block and hold
    # the deadline of the Python gates' run in each measurement (None: the interval)
    gate_timeout: float | None = None
    # re-run the Python gates marked @pytest.mark.gate(watch=True) (a child pytest)
    python_gates: bool = True

    @property
    def python_deadline(self) -> float:
        return self.gate_timeout if self.gate_timeout is not None else self.interval

    @property
    def measurements(self) -> int:
        """How many measurements the window holds (one every interval, the first at once)."""
        return max(1, math.floor(self.duration / self.interval + 1e-9))

    def to_json(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration,
            "interval_s": self.interval,
            "initial_delay_s": self.initial_delay,
            "failure_limit": self.failure_limit,
            "consecutive_error_limit": self.consecutive_error_limit,
            "measurements": self.measurements,
            "gate_timeout_s": self.python_deadline,
            "python_gates": self.python_gates,
        }


def _duration(value: object, where: str, key: str, zero: bool = False) -> float:
    if zero and (value == 0 or (isinstance(value, str) and value.strip() in ("0", "0s"))):
        return 0.0
    try:
        seconds = parse_duration(value, f"{where} key {key!r}")
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if seconds > MAX_DURATION:
        raise ValueError(f"{where} key {key!r}: expected at most 7d, found {value!r}")
    return seconds


def _limit(value: object, where: str, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where} key {key!r}: expected an integer >= 0, found {value!r}")
    return value


def parse_settings(
    table: Mapping[str, Any] | None,
    where: str,
    *,
    duration: object = None,
    interval: object = None,
) -> WatchSettings:
    """The settings of ``table`` (an environment's ``watch``), the command line's
    ``duration`` / ``interval`` over it; ValueError (one line, naming ``where`` and the
    key) for a mistake."""
    table = dict(table or {})
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(KEYS))})"
        )
    if duration is not None:
        table["duration"] = duration
    if interval is not None:
        table["interval"] = interval
    settings = _read(table, where)
    _check_measurements(settings, where)
    return settings


def _read(table: Mapping[str, Any], where: str) -> WatchSettings:
    """Each key of the table, read on its own (the defaults for the others)."""
    settings = WatchSettings()
    if "duration" in table:
        settings = replace(settings, duration=_duration(table["duration"], where, "duration"))
    if "interval" in table:
        settings = replace(settings, interval=_duration(table["interval"], where, "interval"))
    elif settings.interval > settings.duration:
        settings = replace(settings, interval=settings.duration)
    if "initial_delay" in table:
        delay = _duration(table["initial_delay"], where, "initial_delay", zero=True)
        settings = replace(settings, initial_delay=delay)
    if "failure_limit" in table:
        settings = replace(settings, failure_limit=_limit(table["failure_limit"], where,
                                                          "failure_limit"))  # fmt: skip
    if "consecutive_error_limit" in table:
        limit = _limit(table["consecutive_error_limit"], where, "consecutive_error_limit")
        settings = replace(settings, consecutive_error_limit=limit)
    return _python(table, where, settings)


def _python(table: Mapping[str, Any], where: str, settings: WatchSettings) -> WatchSettings:
    """The keys of the Python gates' run: ``gate_timeout``, ``python_gates``."""
    if "gate_timeout" in table:
        timeout = _duration(table["gate_timeout"], where, "gate_timeout")
        if not MIN_INTERVAL <= timeout <= MAX_GATE_TIMEOUT:
            raise ValueError(
                f"{where} key 'gate_timeout': expected between {MIN_INTERVAL:g} s and 1h, "
                f"found {table['gate_timeout']!r}"
            )
        settings = replace(settings, gate_timeout=timeout)
    if "python_gates" in table:
        if not isinstance(table["python_gates"], bool):
            raise ValueError(
                f"{where} key 'python_gates': expected true or false, "
                f"found {table['python_gates']!r}"
            )
        settings = replace(settings, python_gates=table["python_gates"])
    return settings


def _check_measurements(settings: WatchSettings, where: str) -> None:
    """The interval against the duration: not too short, not longer, not too many."""
    if settings.interval < MIN_INTERVAL:
        raise ValueError(
            f"{where} key 'interval': expected at least {MIN_INTERVAL:g} s, "
            f"found {settings.interval:g} s"
        )
    if settings.interval > settings.duration:
        raise ValueError(
            f"{where} key 'interval': expected at most the duration "
            f"({settings.duration:g} s), found {settings.interval:g} s"
        )
    if settings.duration / settings.interval > MAX_MEASUREMENTS:
        raise ValueError(
            f"{where} key 'interval': {settings.duration:g} s every {settings.interval:g} s "
            f"is more than {MAX_MEASUREMENTS} measurements: use a longer interval"
        )
