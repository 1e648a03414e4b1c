"""One declarative check as configured for one environment: loaded where an environment
has checks (the frozen dataclass costs a run ~4 M instructions to compile)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckSpec"]


@dataclass(frozen=True, eq=False)  # by identity: __eq__/__hash__ cost start-up
class CheckSpec:
    """One declarative check as configured for one environment."""

    name: str
    kind: str
    env: str
    spec: Mapping[str, Any] = field(repr=False)  # resolved: may hold ${VAR} values
    where: str
    trigger: str | None = None

    @property
    def id(self) -> str:
        return f"{self.env}::{self.name}"
