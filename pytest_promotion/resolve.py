"""One environment resolved: ``${VAR}`` from its dotenv file and the process environment,
placeholders, shared checks, rollback argv. Every resolved value becomes a secret."""

from __future__ import annotations

import io
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .checks import KINDS, kind_module
from .checks.base import CheckConfigError
from .config import (
    DEFAULT_ROLLBACK_TIMEOUT,
    DEFAULT_TIMEOUT,
    CheckSpec,
    Environment,
    PromotionConfig,
    canonical,
    read_text,
)
from .redact import SecretRegistry, redact
from .schema import SHARED_KEYS, ConfigError, has_substitution

__all__ = ["resolve_environment"]

_PLACEHOLDER = re.compile(r"\{(env|base_url|redis|postgres|prometheus|grafana|python)\}")
_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})")


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


def resolve_environment(config: PromotionConfig, name: str) -> Environment:
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
        text = read_text(
            dotenv_path, f"{file}: [{table_name}] key 'dotenv': file {table['dotenv']}"
        )
        values.update(
            {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}
        )
        source = f"{table['dotenv']} or the process environment"
    values.update(os.environ)
    resolve = _Resolver(file, table_name, values, source)
    settings = {k: resolve(v, k) for k, v in table.items() if k != "checks"}

    ca_bundle = settings.get("ca_bundle")
    if ca_bundle is not None:
        ca_path = Path(ca_bundle) if Path(ca_bundle).is_absolute() else config.rootdir / ca_bundle
        if not ca_path.is_file():
            # The value as written: a ${VAR} in it is a secret, and so is its value.
            raise ConfigError(
                f"{file}: [{table_name}] key 'ca_bundle': file {table['ca_bundle']} not found"
            )
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
        from .rollback import RenderError, render

        try:  # a misspelt placeholder would leave a failed run without its rollback command
            render(argv, {"env": name, "version": "0.0.0", "previous_version": "0.0.0"})
        except RenderError as exc:
            raise ConfigError(f"{file}: [{table_name}] key 'rollback': {exc}") from None
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

    def fill(value: Any, key: str, where: str) -> Any:
        if isinstance(value, str):

            def sub(m: re.Match[str]) -> str:
                found = placeholders.get(m[1])
                if not found:
                    raise ConfigError(
                        f"{where} key {key!r}: {{{m[1]}}} needs [{table_name}] key "
                        f"{m[1]!r}, which is not set"
                    )
                return found

            return _PLACEHOLDER.sub(sub, value)
        if isinstance(value, list):
            return [fill(v, key, where) for v in value]
        if isinstance(value, dict):
            return {k: fill(v, f"{key}.{k}", where) for k, v in value.items()}
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
        where = f"{file}: [[{where_table}]] {check_name!r}"
        spec = {k: fill(resolve(v, k), k, where) for k, v in raw.items() if k not in SHARED_KEYS}
        if has_substitution(raw):
            try:
                kind_module(kind).validate(spec, where)
            except CheckConfigError as exc:
                raise ConfigError(redact(str(exc), resolve.secrets.values)) from None
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
