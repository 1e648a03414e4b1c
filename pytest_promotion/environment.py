"""What a resolved config is made of: environments, their checks, the chain's names.

Plain data, imported by config.py (loading) and resolve.py (resolving) alike, so neither
imports the other's internals.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .redact import redact
from .schema import ConfigError

if TYPE_CHECKING:  # the checks package (and a check's spec) only where a check runs
    from .check_spec import CheckSpec
    from .checks.base import Target

__all__ = [
    "ALIASES",
    "DEFAULT_CHAIN",
    "DEFAULT_ROLLBACK_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "CheckSpec",
    "Environment",
    "canonical",
    "chain_name",
    "read_text",
    "spellings",
]

DEFAULT_CHAIN = ("dev", "staging", "prod")
ALIASES = {"development": "dev", "production": "prod"}
DEFAULT_TIMEOUT = 5.0
DEFAULT_ROLLBACK_TIMEOUT = 600.0


def canonical(name: str) -> str:
    """``production`` -> ``prod``, ``development`` -> ``dev``; other names unchanged.
    Only for comparing names: what is shown is the chain's own spelling (chain_name)."""
    return ALIASES.get(name, name)


@functools.lru_cache(maxsize=32)
def spellings(chain: tuple[str, ...]) -> Mapping[str, str]:
    """Every way to write a name of ``chain`` (its own spelling and its aliases) -> the
    chain's spelling: with ``("development", "staging", "production")``, ``prod`` ->
    ``production``."""
    names: dict[str, str] = {}
    for name in chain:
        short = canonical(name)
        names[short] = name
        names.update({long: name for long, s in ALIASES.items() if s == short})
        names[name] = name
    return names


def chain_name(name: str, chain: Sequence[str]) -> str | None:
    """The chain's spelling of ``name`` (an alias included), or None: not in the chain."""
    return spellings(tuple(chain)).get(name)


@dataclass(frozen=True, repr=False, eq=False)  # its own __repr__; by identity
class Environment:
    """One environment of the chain with its settings resolved.

    Its repr shows the name and base_url only: pytest prints it in tracebacks
    (``--showlocals``), truncated, where a secret cut in two could not be masked."""

    name: str
    base_url: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    rollback: tuple[str, ...] | None = None
    rollback_timeout: float = DEFAULT_ROLLBACK_TIMEOUT
    allow_waivers: bool = True
    allow_skips: bool = True
    hosts: tuple[str, ...] = ()
    services: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[CheckSpec, ...] = ()
    secrets: tuple[str, ...] = ()
    rootdir: Path = field(default_factory=Path.cwd)
    # Lines every report carries (no config file, TLS off) and lines for the header only.
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        base_url = redact(self.base_url, self.secrets) if self.base_url else None
        return f"Environment(name={self.name!r}, base_url={base_url!r})"

    def target(self) -> Target:
        """What check modules need to know of this environment."""
        from .checks.base import Target

        return Target(
            env=self.name,
            base_url=self.base_url,
            ca_bundle=self.ca_bundle,
            insecure=self.insecure,
            timeout=self.timeout,
            rootdir=self.rootdir,
            secrets=self.secrets,
            settings={**self.services, "hosts": list(self.hosts)},  # hosts: the file kind
        )


def read_text(path: Path, label: str | None = None) -> str:
    """A config or dotenv file's text (UTF-8); a mistake is a one-line ConfigError that
    names the byte's line, never the file's content (it may hold secrets)."""
    label = label or path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{label}: expected UTF-8 text, found byte 0x{raw[exc.start]:02x} on line {line}"
        ) from None
