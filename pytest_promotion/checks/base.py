"""What every check kind shares: its contract, its target, its outcome, its errors.

Check modules know nothing of pytest. A kind is anything that satisfies
:class:`CheckKind`: a built-in module under ``pytest_promotion.checks`` satisfies it
structurally (module-level ``KEYS``, ``ROLLBACK``, ``validate``, ``run``; ``CONCURRENT``
and ``prepare`` may be left out, they default to False and nothing), and so may a
third-party module or object (see checks/registry.py and docs/extending.md).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["CheckConfigError", "CheckFailed", "CheckKind", "Outcome", "Target", "crash_outcome"]


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


@dataclass(frozen=True, repr=False)  # its own __repr__ (masked) below
class Target:
    """The environment a check runs against, as a check needs it."""

    env: str
    base_url: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    timeout: float = 5.0
    rootdir: Path = field(default_factory=Path.cwd)  # the config file's directory
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
        """A path from the config, relative to the config file's directory."""
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


def crash_outcome(exc: BaseException, secrets: Iterable[str] = (), culprit: str = "") -> Outcome:
    """The failed Outcome of a check that raised instead of returning one: one line,
    credentials in URLs and the given secrets masked, marked ``crashed`` (the runner makes
    that a block, never a rollback). The one message of every error net."""
    from ..redact import redact, redact_url

    text = redact(redact_url(f"{type(exc).__name__}: {exc}"), tuple(secrets))
    first = text.splitlines()[0] if text.strip() else type(exc).__name__
    message = f"{culprit} ({first})" if culprit else first
    return Outcome(passed=False, message=message, rollback=False, details={"crashed": True})


@runtime_checkable
class CheckKind(Protocol):
    """The contract of a check kind (``KEYS``, ``ROLLBACK``, ``CONCURRENT``, ``validate``,
    ``prepare``, ``run``). A module that defines these names satisfies it.

    - ``KEYS``: the keys it accepts besides the common ones (``name``, ``timeout``,
      ``trigger``, ``wait``, ...), the kind's own key included (``"http": str``), with
      their TOML types (a type or a tuple of types);
    - ``ROLLBACK``: the default trigger: whether a failure of this kind triggers rollback
      (health kinds do; quality kinds only block); a check's ``trigger`` overrides it;
    - ``CONCURRENT``: a network probe that may start early, with the others, on the run's
      pool; a quality kind (CPU work, or reading what an earlier check wrote) runs in its
      item's turn;
    - ``validate(spec, where)``: semantic checks beyond key and type; raise
      :class:`CheckConfigError` naming ``where``, the key, what was expected and found;
    - ``prepare()``: imports a pool thread would otherwise do on first use, done once in
      the main thread before the probes start;
    - ``run(spec, target)``: perform the check once, within ``target.deadline()``; never
      raise for a failing target: return a failed :class:`Outcome` (or raise
      :class:`CheckFailed`) with a one-line message a person can act on.

    Example (a module ``acme_kinds/queue.py``)::

        KEYS = {"queue": str, "max_depth": int}
        ROLLBACK = True
        CONCURRENT = True

        def validate(spec, where): ...
        def prepare(): ...
        def run(spec, target):
            depth = read_depth(spec["queue"], deadline=target.deadline())
            return Outcome(depth <= spec.get("max_depth", 100), f"depth {depth}", depth)
    """

    @property
    def KEYS(self) -> Mapping[str, type | tuple[type, ...]]: ...

    @property
    def ROLLBACK(self) -> bool: ...

    @property
    def CONCURRENT(self) -> bool: ...

    def validate(self, spec: Mapping[str, Any], where: str) -> None: ...

    def prepare(self) -> None: ...

    def run(self, spec: Mapping[str, Any], target: Target) -> Outcome: ...
