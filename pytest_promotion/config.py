"""Load and validate ``promotion.toml`` (or ``[tool.promotion]`` in ``pyproject.toml``).

Everything a user can get wrong here ends in a :class:`ConfigError` whose message is one
line naming the file, the table and the key, what was expected and what was found.
``${VAR}`` values are resolved only for the target environment, from its ``dotenv`` file
and the process environment (the process wins), and every resolved value is a secret.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import KINDS, Target, kind_module
from .checks.base import CheckConfigError
from .redact import SecretRegistry

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
]

DEFAULT_CHAIN = ("dev", "staging", "prod")
ALIASES = {"development": "dev", "production": "prod"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_TIMEOUT = 5.0
DEFAULT_ROLLBACK_TIMEOUT = 600.0
DEFAULT_CONCURRENCY = 64

_NUMBER = (int, float)
# key -> (accepted types, what to call them in an error)
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a string"),
    "bool": ((bool,), "true or false"),
    "number": (_NUMBER, "a number"),
    "int": ((int,), "an integer"),
    "list[str]": ((list,), "a list of strings"),
    "table": ((dict,), "a table"),
    "argv": ((str, list), "a string or a list of strings"),
}
_PROMOTION_KEYS = {"environments": "list[str]", "concurrency": "int"}
_ENV_KEYS = {
    "base_url": "str",
    "ca_bundle": "str",
    "insecure": "bool",
    "dotenv": "str",
    "timeout": "number",
    "rollback": "argv",
    "rollback_timeout": "number",
    "allow_waivers": "bool",
    "allow_skips": "bool",
    "hosts": "list[str]",
    "redis": "str",
    "postgres": "str",
    "prometheus": "str",
    "grafana": "str",
    "vars": "table",
    "checks": "list",
}
_CHECK_COMMON = {
    "name": "str",
    "timeout": "number",
    "trigger": "str",
    "wait": "table",
    "consecutive_successes": "int",
    "description": "str",
}
# only on top-level [[checks]] shared by several environments
_SHARED_KEYS = {"environments": "list[str]", "from": "str"}
_PLACEHOLDER = re.compile(r"\{(env|base_url|redis|postgres|prometheus|grafana|python)\}")
_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})")


class ConfigError(Exception):
    """A configuration mistake, explained in one line."""


def canonical(name: str) -> str:
    """``production`` -> ``prod``, ``development`` -> ``dev``; other names unchanged."""
    return ALIASES.get(name, name)


@dataclass(frozen=True)
class CheckSpec:
    """One declarative check as configured for one environment."""

    name: str
    kind: str
    env: str
    spec: Mapping[str, Any]
    where: str
    trigger: str | None = None

    @property
    def id(self) -> str:
        return f"{self.env}::{self.name}"


@dataclass(frozen=True)
class Environment:
    """One environment of the chain with its settings resolved."""

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
            settings=dict(self.services),
        )


@dataclass(frozen=True)
class PromotionConfig:
    """The validated config: the chain and the raw environment tables."""

    path: Path | None
    rootdir: Path
    chain: tuple[str, ...] = DEFAULT_CHAIN
    concurrency: int = DEFAULT_CONCURRENCY
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    shared_checks: tuple[Mapping[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return self.path.name if self.path else "(no config file)"

    def environment(self, name: str) -> Environment:
        """Resolve one environment: ``${VAR}``, dotenv, placeholders, checks."""
        return _resolve_environment(self, canonical(name))


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


def load_config(rootdir: Path, explicit: str | None = None) -> PromotionConfig:
    """Read and validate the config (every environment's keys and types)."""
    path, is_pyproject = find_config(rootdir, explicit)
    if path is None:
        return PromotionConfig(path=None, rootdir=rootdir)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path.name}: cannot read: {exc.strerror}") from None
    if is_pyproject:
        data = data.get("tool", {}).get("promotion")
        if data is None:
            return PromotionConfig(path=None, rootdir=rootdir)
        prefix = "tool.promotion."
    else:
        prefix = ""
    return _validate(path, rootdir, data, prefix)


def _type_error(file: str, table: str, key: str, kind: str, value: object) -> ConfigError:
    found = type(value).__name__
    if isinstance(value, str):
        found = f"string {value!r}"
    elif isinstance(value, bool):
        found = f"boolean {str(value).lower()}"
    elif isinstance(value, _NUMBER):
        found = f"number {value}"
    expected = _TYPES[kind][1] if kind in _TYPES else "a list of tables"
    return ConfigError(f"{file}: [{table}] key {key!r}: expected {expected}, found {found}")


def _check_table(
    file: str, table: str, data: Mapping[str, Any], allowed: Mapping[str, str]
) -> None:
    for key, value in data.items():
        kind = allowed.get(key)
        if kind is None:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"{file}: [{table}] unknown key {key!r} (known keys: {known})")
        _check_type(file, table, key, kind, value)


def _check_type(file: str, table: str, key: str, kind: str, value: object) -> None:
    if kind == "list":
        if not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            raise _type_error(file, table, key, kind, value)
        return
    types, _ = _TYPES[kind]
    ok = isinstance(value, types) and not (kind in ("number", "int") and isinstance(value, bool))
    if ok and kind == "list[str]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if ok and kind == "argv" and isinstance(value, list):
        ok = bool(value) and all(isinstance(v, str) for v in value)
    if ok and kind == "number" and not math.isfinite(float(value)):  # type: ignore[arg-type]
        ok = False
    if not ok:
        raise _type_error(file, table, key, kind, value)


def _validate(path: Path, rootdir: Path, data: dict[str, Any], prefix: str) -> PromotionConfig:
    file = path.name
    _check_table(
        file,
        prefix.rstrip(".") or "top level",
        data,
        {"promotion": "table", "environments": "table", "checks": "list"},
    )
    promotion = data.get("promotion", {})
    _check_table(file, f"{prefix}promotion", promotion, _PROMOTION_KEYS)
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
            raise _type_error(file, f"{prefix}environments", raw_name, "table", table)
        _check_table(file, tname, table, _ENV_KEYS)
        if "timeout" in table and table["timeout"] <= 0:
            raise ConfigError(
                f"{file}: [{tname}] key 'timeout': expected > 0, found {table['timeout']}"
            )
        for index, check in enumerate(table.get("checks", [])):
            _validate_check(file, f"{tname}.checks", index, check, shared=False)
        tables[name] = table

    shared = tuple(data.get("checks", []))
    for index, check in enumerate(shared):
        _validate_check(file, f"{prefix}checks", index, check, shared=True)
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
    )


def _validate_check(file: str, table: str, index: int, check: dict[str, Any], shared: bool) -> None:
    label = repr(check["name"]) if isinstance(check.get("name"), str) else f"#{index + 1}"
    kinds = [k for k in check if k in KINDS]
    where = f"{file}: [[{table}]] {label}"
    if len(kinds) != 1:
        found = ", ".join(sorted(kinds)) if kinds else "none"
        raise ConfigError(
            f"{where}: expected exactly one check kind ({', '.join(KINDS)}), found {found}"
        )
    module = kind_module(kinds[0])
    allowed = dict(_CHECK_COMMON)
    if shared:
        allowed.update(_SHARED_KEYS)
    for key, value in check.items():
        if key in allowed:
            _check_type(file, f"[{table}] {label}".strip("[]"), key, allowed[key], value)
            continue
        types = module.KEYS.get(key)
        if types is None:
            known = ", ".join(sorted({*allowed, *module.KEYS}))
            raise ConfigError(
                f"{where}: unknown key {key!r} for a {kinds[0]} check (known keys: {known})"
            )
        types = types if isinstance(types, tuple) else (types,)
        numeric = float in types and isinstance(value, int) and not isinstance(value, bool)
        if not (isinstance(value, types) or numeric) or (
            isinstance(value, bool) and bool not in types
        ):
            names = " or ".join(t.__name__ for t in types)
            raise ConfigError(
                f"{where}: key {key!r}: expected {names}, found {type(value).__name__} {value!r}"
            )
    trigger = check.get("trigger")
    if trigger is not None and trigger not in ("rollback", "block"):
        raise ConfigError(
            f'{where}: key \'trigger\': expected "rollback" or "block", found {trigger!r}'
        )
    if "name" in check and not NAME_RE.match(check["name"]):
        raise ConfigError(
            f"{where}: key 'name': expected letters, digits, '.', '_' or '-', found {check['name']!r}"
        )
    if "consecutive_successes" in check and check["consecutive_successes"] < 1:
        raise ConfigError(
            f"{where}: key 'consecutive_successes': expected >= 1, found {check['consecutive_successes']}"
        )
    if "timeout" in check and check["timeout"] <= 0:
        raise ConfigError(f"{where}: key 'timeout': expected > 0, found {check['timeout']}")
    try:
        module.validate(check, where)
        if "wait" in check:
            from .checks.wait import parse_wait

            parse_wait(check["wait"], where)
    except CheckConfigError as exc:
        raise ConfigError(str(exc)) from None


class _Resolver:
    """Substitutes ``${VAR}`` (and ``$$``) and remembers the values as secrets."""

    def __init__(self, file: str, table: str, values: Mapping[str, str], source: str) -> None:
        self.file, self.table, self.values, self.source = file, table, values, source
        self.secrets = SecretRegistry()

    def __call__(self, value: Any, key: str) -> Any:
        if isinstance(value, str):
            return self._string(value, key)
        if isinstance(value, list):
            return [self(v, key) for v in value]
        if isinstance(value, dict):
            return {k: self(v, f"{key}.{k}") for k, v in value.items()}
        return value

    def _string(self, value: str, key: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m["name"]
            if name is None:
                return "$"
            found = self.values.get(name, m["default"])
            if found is None:
                raise ConfigError(
                    f"{self.file}: [{self.table}] key {key!r}: ${{{name}}} is not set "
                    f"(expected in {self.source})"
                )
            self.secrets.add(found)
            return found

        resolved = _VAR.sub(sub, value)
        self.secrets.add_from_url(resolved)
        return resolved


def _resolve_environment(config: PromotionConfig, name: str) -> Environment:
    if name not in config.chain:
        raise ConfigError(f"unknown environment {name!r}; known: {', '.join(config.chain)}")
    file = config.label
    prefix = "tool.promotion." if config.path and config.path.name == "pyproject.toml" else ""
    table_name = f"{prefix}environments.{name}"
    table = dict(config.tables.get(name, {}))
    values: dict[str, str] = {}
    source = "the process environment"
    if "dotenv" in table:
        from dotenv import dotenv_values

        dotenv_path = Path(table["dotenv"])
        if not dotenv_path.is_absolute():
            dotenv_path = config.rootdir / dotenv_path
        if not dotenv_path.is_file():
            raise ConfigError(
                f"{file}: [{table_name}] key 'dotenv': file {table['dotenv']} not found"
            )
        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        source = f"{table['dotenv']} or the process environment"
    values.update(os.environ)
    resolve = _Resolver(file, table_name, values, source)
    settings = {k: resolve(v, k) for k, v in table.items() if k != "checks"}

    ca_bundle = settings.get("ca_bundle")
    if ca_bundle is not None:
        ca_path = Path(ca_bundle) if Path(ca_bundle).is_absolute() else config.rootdir / ca_bundle
        if not ca_path.is_file():
            raise ConfigError(f"{file}: [{table_name}] key 'ca_bundle': file {ca_bundle} not found")
        ca_bundle = str(ca_path)
    rollback = settings.get("rollback")
    argv: tuple[str, ...] | None = None
    if rollback is not None:
        try:
            argv = tuple(shlex.split(rollback)) if isinstance(rollback, str) else tuple(rollback)
        except ValueError as exc:
            raise ConfigError(f"{file}: [{table_name}] key 'rollback': {exc}") from None
        if not argv:
            raise ConfigError(
                f"{file}: [{table_name}] key 'rollback': expected a command, found an empty string"
            )
    last = name == config.chain[-1]
    services: dict[str, str] = {
        k: settings[k] for k in ("redis", "postgres", "prometheus", "grafana") if k in settings
    }
    # {python} is the interpreter running pytest, so a command check uses the same venv.
    placeholders: dict[str, str] = {
        "env": name,
        "base_url": settings.get("base_url", ""),
        "python": sys.executable,
        **services,
    }

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: str(placeholders[m[1]]), value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    checks: list[CheckSpec] = []
    raw_checks = [(f"{table_name}.checks", c) for c in table.get("checks", [])]
    position = config.chain.index(name)
    for c in config.shared_checks:
        if "environments" in c:
            applies = name in {canonical(n) for n in c["environments"]}
        else:
            applies = position >= config.chain.index(canonical(c.get("from", config.chain[0])))
        if applies:
            raw_checks.append((f"{prefix}checks", c))
    seen: set[str] = set()
    for where_table, raw in raw_checks:
        kind = next(k for k in raw if k in KINDS)
        check_name = raw.get("name", kind)
        if check_name in seen:
            raise ConfigError(
                f"{file}: [[{where_table}]] two checks named {check_name!r} for {name} "
                "(give each a unique 'name')"
            )
        seen.add(check_name)
        spec = {k: fill(resolve(v, k)) for k, v in raw.items() if k not in _SHARED_KEYS}
        checks.append(
            CheckSpec(
                name=check_name,
                kind=kind,
                env=name,
                spec=spec,
                where=f"{file} [[{where_table}]] {check_name!r}",
                trigger=raw.get("trigger"),
            )
        )
    return Environment(
        name=name,
        base_url=settings.get("base_url"),
        ca_bundle=ca_bundle,
        insecure=settings.get("insecure", False),
        timeout=float(settings.get("timeout", DEFAULT_TIMEOUT)),
        rollback=argv,
        rollback_timeout=float(settings.get("rollback_timeout", DEFAULT_ROLLBACK_TIMEOUT)),
        allow_waivers=settings.get("allow_waivers", not last),
        allow_skips=settings.get("allow_skips", not last),
        hosts=tuple(settings.get("hosts", ())),
        services=services,
        vars=settings.get("vars", {}),
        checks=tuple(checks),
        secrets=resolve.secrets.values,
        rootdir=config.rootdir,
    )
