"""The ``gate`` fixture's object: what a Python gate measured, against which threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

import pytest

from .gate_facts import PROP, meta_key

if TYPE_CHECKING:
    from .checks.base import Outcome

__all__ = ["GateRecorder", "recorder_for", "recorder_key"]


def _fmt(value: float | str) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _number(value: object, strings: bool) -> float | str | None:
    """``value`` as a finite number (or a non-empty string, where ``strings``), else None."""
    if isinstance(value, str):
        return value if strings and value.strip() else None
    if value is None:
        return None
    if isinstance(value, bool):  # a yes/no result may be recorded, not compared
        return str(value) if strings else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


@dataclass(eq=False)  # by identity: each generated method costs start-up
class GateRecorder:
    """Record a gate's measurement; optionally enforce a minimum or maximum.

    Example::

        @pytest.mark.dev
        def test_coverage(gate):
            gate.measure(read_coverage(), min=60, unit="%")
    """

    name: str
    rollback_trigger: bool = False
    measured: str | None = None
    threshold: str | None = None
    message: str | None = None
    # True when the gate marker set the trigger: a probe must not override the author.
    trigger_explicit: bool = False
    # True when the trigger is a declarative check's (its kind's default or its table's
    # trigger): a failure then says which it is (a check that could not run blocks).
    trigger_from_check: bool = False
    # A failure was recorded (a measurement out of bounds, a failed probe): the gate fails
    # even if the test went on and passed (an AssertionError caught in the test).
    failed: bool = False
    # The item's user_properties: every report of the item carries a copy of them, so
    # what the gate records reaches the controller (and the JUnit case) even under xdist.
    properties: list[tuple[str, object]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.sync()

    def __setattr__(self, key: str, value: object) -> None:
        object.__setattr__(self, key, value)
        if key != "properties" and "properties" in self.__dict__:
            self.sync()

    def sync(self) -> None:
        """Mirror the record into the item's user_properties (``promotion.*`` keys)."""
        props = self.properties
        props[:] = [p for p in props if not str(p[0]).startswith(PROP)]
        props.append((PROP + "gate", self.name))
        props.append((PROP + "trigger", "rollback" if self.rollback_trigger else "block"))
        for key in ("measured", "threshold", "message"):
            value = getattr(self, key)
            if value is not None:
                props.append((PROP + key, value))
        if self.failed:
            props.append((PROP + "failed", "true"))

    def measure(
        self,
        value: float | str | None,
        threshold: float | str | None = None,
        unit: str = "",
        *,
        min: float | None = None,
        max: float | None = None,
        max_increase: str | None = None,
        max_decrease: str | None = None,
        min_delta: float | None = None,
        baseline_runs: int | None = None,
        on_missing_baseline: str | None = None,
    ) -> None:
        """Record ``value`` (and fail the gate if it is outside ``min``/``max``).

        No data (None, NaN, an infinity, an empty string; with ``min``/``max`` also any
        string) fails the gate, as a block: a gate passes only on a measurement.
        ``max_increase="10%"`` / ``max_decrease`` (with ``min_delta``, ``baseline_runs``
        and a stated ``on_missing_baseline``, beside ``min``/``max``) also compare it with
        the gate's values in the last good promotes (docs/watch.md)."""
        __tracebackhide__ = True
        suffix = f" {unit}" if unit else ""
        for label, bound in (("min", min), ("max", max)):
            if bound is not None and _number(bound, strings=False) is None:
                # nothing can be compared with it: not evidence, and a mistake to show
                self._fail(f"{self.name}: {label}={bound!r} is not a finite number", block=True)
        parts = []
        if min is not None:
            parts.append(f">= {_fmt(min)}{suffix}")
        if max is not None:
            parts.append(f"<= {_fmt(max)}{suffix}")
        if threshold is not None:
            parts.append(f"{_fmt(threshold)}{suffix}")
        self.threshold = " and ".join(parts) or None
        number = _number(value, strings=min is None and max is None)
        if number is None:
            self.measured = None
            # Nothing was measured: the release is not vouched for, but nothing is shown
            # to be wrong with it either, so this blocks; it does not roll back.
            against = f" to compare with {self.threshold}" if self.threshold else ""
            # "57.2" with min/max: a value, but text, never compared as a number.
            what = "not a number" if isinstance(value, str) and value.strip() else "no data"
            self._fail(f"{self.name}: {what} ({value!r}){against}", block=True)
        self.measured = f"{_fmt(value)}{suffix}"  # type: ignore[arg-type]
        if isinstance(number, str):
            return
        if min is not None and number < min:
            self._fail(f"{self.name}: {_fmt(number)}{suffix} < {_fmt(min)}{suffix}")
        if max is not None and number > max:
            self._fail(f"{self.name}: {_fmt(number)}{suffix} > {_fmt(max)}{suffix}")
        if max_increase is not None or max_decrease is not None:  # watch seam: relative
            from .watch.relative import measure_relative

            failure, self.threshold, block = measure_relative(
                self.name, number, self.threshold, min=min, max=max, max_increase=max_increase,
                max_decrease=max_decrease, min_delta=min_delta, baseline_runs=baseline_runs,
                on_missing_baseline=on_missing_baseline,
            )  # fmt: skip
            if failure:
                self._fail(failure, block=block)

    def _fail(self, message: str, block: bool = False) -> NoReturn:
        __tracebackhide__ = True
        if block:
            self.rollback_trigger = False
        self.message, self.failed = message, True
        pytest.fail(message, pytrace=False)

    def record(self, outcome: Outcome) -> None:
        """Record a check's measured value and threshold. A failed check that is a rollback
        trigger makes the gate one, unless the gate marker set the trigger."""
        if outcome.measured is not None:
            unit = f" {outcome.unit}" if outcome.unit else ""
            self.measured = f"{_fmt(outcome.measured)}{unit}"
        self.threshold = outcome.threshold
        if not outcome.passed:
            if self.trigger_from_check:
                self.rollback_trigger = bool(outcome.rollback)
            elif outcome.rollback and not self.trigger_explicit:
                self.rollback_trigger = True
            self.message, self.failed = outcome.message, True

    def trigger_rollback(self, trigger: bool = True) -> None:
        """Make a failure of this gate a rollback trigger (or only a block)."""
        self.rollback_trigger = trigger


recorder_key = pytest.StashKey[GateRecorder]()


def recorder_for(item: pytest.Item) -> GateRecorder:
    """The item's recorder, made on first use from what collection declared."""
    recorder = item.stash.get(recorder_key, None)
    if recorder is None:
        name, trigger, explicit, from_check = item.stash.get(
            meta_key, (item.nodeid, False, False, False)
        )
        recorder = item.stash[recorder_key] = GateRecorder(
            name=name,
            rollback_trigger=trigger,
            trigger_explicit=explicit,
            trigger_from_check=from_check,
            properties=item.user_properties,
        )
    return recorder
