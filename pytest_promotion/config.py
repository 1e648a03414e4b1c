"""Load and validate ``promotion.toml`` (or ``[tool.promotion]`` in ``pyproject.toml``).

Everything a user can get wrong here ends in a :class:`ConfigError` whose message is one
line naming the file, the table and the key, what was expected and what was found (the
key tables are in schema.py). ``${VAR}`` values are resolved only for the target
environment, in resolve.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import Target
from .redact import redact
from .schema import (
    ENV_KEYS,
    NAME_RE,
    PROMOTION_KEYS,
    ConfigError,
    check_table,
    type_error,
    validate_check,
)

__all__ = [
    "ALIASES",
    "DEFAULT_CHAIN",
    "NAME_RE",
    "CheckSpec",
    "ConfigError",
    "Environment",
    "PromotionConfig",
    "canonical",
    "find_config",
    "load_config",
    "read_text",
]

DEFAULT_CHAIN = ("dev", "staging", "prod")
ALIASES = {"development": "dev", "production": "prod"}
DEFAULT_TIMEOUT = 5.0
DEFAULT_ROLLBACK_TIMEOUT = 600.0
DEFAULT_CONCURRENCY = 64


def canonical(name: str) -> str:
    """``production`` -> ``prod``, ``development`` -> ``dev``; other names unchanged."""
    return ALIASES.get(name, name)


@dataclass(frozen=True)
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


@dataclass(frozen=True, repr=False)
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

    def __repr__(self) -> str:
        base_url = redact(self.base_url, self.secrets) if self.base_url else None
        return f"Environment(name={self.name!r}, base_url={base_url!r})"

    def target(self) -> Target:
        """What check modules need to know of this environment."""
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


@dataclass(frozen=True)
class PromotionConfig:
    """The validated config: the chain and the raw environment tables."""

    path: Path | None
    rootdir: Path
    chain: tuple[str, ...] = DEFAULT_CHAIN
    concurrency: int = DEFAULT_CONCURRENCY
    # The tables as written: a URL in them may carry a password.
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    shared_checks: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)  # [promotion] as written

    @property
    def label(self) -> str:
        return self.path.name if self.path else "(no config file)"

    def environment(self, name: str) -> Environment:
        """Resolve one environment: ``${VAR}``, dotenv, placeholders, checks."""
        from .resolve import resolve_environment

        return resolve_environment(self, canonical(name))


def find_config(rootdir: Path, explicit: str | None) -> tuple[Path | None, bool]:
    """The config file and whether it is a pyproject.toml (``[tool.promotion]``)."""
    if explicit:
        path = Path(explicit)
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.is_file():
            raise ConfigError(f"--promotion-config {explicit}: file not found")
        return path, path.name == "pyproject.toml"
    candidate = rootdir / "promotion.toml"
    if candidate.is_file():
        return candidate, False
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file():
        return pyproject, True
    return None, False


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


def load_config(rootdir: Path, explicit: str | None = None) -> PromotionConfig:
    """Read and validate the config (every environment's keys and types)."""
    path, is_pyproject = find_config(rootdir, explicit)
    if path is None:
        return PromotionConfig(path=None, rootdir=rootdir)
    import tomllib  # only when there is a file to read: it is not free at start-up

    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}") from None
    if is_pyproject:
        tool = data.get("tool", {})
        if not isinstance(tool, dict):
            raise type_error(path.name, "top level", "tool", "table", tool)
        table = tool.get("promotion")
        if table is None:
            return PromotionConfig(path=None, rootdir=rootdir)
        if not isinstance(table, dict):
            raise type_error(path.name, "tool", "promotion", "table", table)
        data = table
        prefix = "tool.promotion."
    else:
        prefix = ""
    return _validate(path, rootdir, data, prefix)


def _validate(path: Path, rootdir: Path, data: dict[str, Any], prefix: str) -> PromotionConfig:
    file = path.name
    check_table(
        file,
        prefix.rstrip(".") or "top level",
        data,
        {"promotion": "table", "environments": "table", "checks": "list"},
    )
    promotion = data.get("promotion", {})
    check_table(file, f"{prefix}promotion", promotion, PROMOTION_KEYS)
    chain_raw = promotion.get("environments", list(DEFAULT_CHAIN))
    chain = tuple(canonical(n) for n in chain_raw)
    where = f"{file}: [{prefix}promotion] key 'environments'"
    if not chain:
        raise ConfigError(f"{where}: expected at least one environment, found an empty list")
    for name in chain:
        if not NAME_RE.match(name):
            raise ConfigError(f"{where}: {name!r} is not a valid environment name")
    if len(set(chain)) != len(chain):
        raise ConfigError(f"{where}: an environment is listed twice: {list(chain_raw)}")
    concurrency = promotion.get("concurrency", DEFAULT_CONCURRENCY)
    if concurrency < 1:
        raise ConfigError(
            f"{file}: [{prefix}promotion] key 'concurrency': expected >= 1, found {concurrency}"
        )

    tables: dict[str, Mapping[str, Any]] = {}
    for raw_name, table in data.get("environments", {}).items():
        name = canonical(raw_name)
        tname = f"{prefix}environments.{raw_name}"
        if name not in chain:
            raise ConfigError(
                f"{file}: [{tname}] is not in the chain {list(chain)} "
                f"(add it to [{prefix}promotion] environments)"
            )
        if not isinstance(table, dict):
            raise type_error(file, f"{prefix}environments", raw_name, "table", table)
        check_table(file, tname, table, ENV_KEYS)
        for key in ("timeout", "rollback_timeout"):  # a number, finite: checked above
            if key in table and table[key] <= 0:
                raise ConfigError(
                    f"{file}: [{tname}] key {key!r}: expected > 0, found {table[key]}"
                )
        for index, check in enumerate(table.get("checks", [])):
            validate_check(file, f"{tname}.checks", index, check, shared=False)
        if "watch" in table:  # watch seam: the window's keys and durations, one-line errors
            _validate_watch(file, tname, table["watch"])
        tables[name] = table

    shared = tuple(data.get("checks", []))
    for index, check in enumerate(shared):
        validate_check(file, f"{prefix}checks", index, check, shared=True)
        for key in ("environments", "from"):
            names = check.get(key, [])
            for n in [names] if isinstance(names, str) else names:
                if canonical(n) not in chain:
                    raise ConfigError(
                        f"{file}: [[{prefix}checks]] #{index + 1} key {key!r}: "
                        f"{n!r} is not in the chain {list(chain)}"
                    )
    return PromotionConfig(
        path=path,
        rootdir=rootdir,
        chain=chain,
        concurrency=concurrency,
        tables=tables,
        shared_checks=shared,
        options=promotion,
    )


def _validate_watch(file: str, table: str, watch: Mapping[str, Any]) -> None:
    from .watch.settings import parse_settings

    try:
        parse_settings(watch, f"{file}: [{table}.watch]")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
