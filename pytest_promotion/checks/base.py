"""What every check kind shares: its target, its outcome, its errors.

Check modules know nothing of pytest. A kind is a module under ``pytest_promotion.checks``
that defines:

- ``KEYS: dict[str, type | tuple[type, ...]]``: the keys it accepts besides the common
  ones (the kind key itself included, e.g. ``"http": str``), with their TOML types;
- ``ROLLBACK: bool``: whether a failure of this kind triggers rollback by default
  (health kinds do; quality kinds only block);
- ``CONCURRENT: bool`` (optional, default False): a network probe that may start early,
  together with the others, on the run's pool; quality kinds run in their item's turn;
- ``validate(spec: Mapping[str, Any], where: str) -> None``: semantic checks beyond key
  and type (raise :class:`CheckConfigError` naming ``where``, the key, expected and found);
- ``run(spec: Mapping[str, Any], target: Target) -> Outcome``: perform the check once,
  within ``target.deadline()``; never raise for a failing target: return a failed
  Outcome with a one-line message a person can act on.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CheckConfigError", "CheckFailed", "Outcome", "Target"]


class CheckConfigError(ValueError):
    """A check's spec is wrong: one line naming the place, the key, expected and found."""


class CheckFailed(Exception):
    """Raised inside a kind's helpers to end the check with a failed Outcome."""

    def __init__(
        self,
        message: str,
        *,
        measured: float | str | None = None,
        threshold: str | None = None,
        unit: str = "",
        rollback: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.measured = measured
        self.threshold = threshold
        self.unit = unit
        self.rollback = rollback

    def outcome(self) -> Outcome:
        return Outcome(
            passed=False,
            message=self.message,
            measured=self.measured,
            threshold=self.threshold,
            unit=self.unit,
            rollback=self.rollback,
        )


@dataclass(frozen=True)
class Target:
    """The environment a check runs against, as a check needs it."""

    env: str
    base_url: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    timeout: float = 5.0
    rootdir: Path = field(default_factory=Path.cwd)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        # What --showlocals prints of a check's frame: no secret, no credential in a URL.
        from ..redact import redact, redact_url

        url = redact(redact_url(self.base_url), self.secrets) if self.base_url else None
        return f"Target(env={self.env!r}, base_url={url!r}, insecure={self.insecure})"

    def deadline(self, timeout: float | None = None) -> float:
        """The monotonic instant by which a probe must be over."""
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def with_timeout(self, timeout: float) -> Target:
        """The same target with another probe timeout (a check's own ``timeout``)."""
        return dataclasses.replace(self, timeout=float(timeout))

    def path(self, value: str) -> Path:
        """A path from the config, relative to the rootdir."""
        p = Path(value)
        return p if p.is_absolute() else self.rootdir / p


@dataclass
class Outcome:
    """The result of one check run: the evidence a gate record is made of."""

    passed: bool
    message: str
    measured: float | str | None = None
    threshold: str | None = None
    unit: str = ""
    rollback: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # No data is never a pass: a NaN measurement cannot vouch for anything.
        if isinstance(self.measured, float) and math.isnan(self.measured) and self.passed:
            self.passed = False
            self.message = f"measured value is NaN: {self.message}"
