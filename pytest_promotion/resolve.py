"""One environment resolved: ``${VAR}`` from its dotenv file and the process environment,
placeholders, shared checks, rollback argv. Every resolved value becomes a secret, except
the variables the environment lists in ``public``."""

from __future__ import annotations

import io
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .environment import (
    DEFAULT_CHAIN,
    DEFAULT_ROLLBACK_TIMEOUT,
    DEFAULT_TIMEOUT,
    Environment,
    canonical,
    chain_name,
    read_text,
)
from .redact import SecretRegistry, redact, redact_url
from .schema import ENV_KEYS, SHARED_KEYS, ConfigError, has_substitution, placeholder_pattern

if TYPE_CHECKING:
    from .check_spec import CheckSpec

__all__ = ["DEFAULT_CONCURRENCY", "PromotionConfig", "resolve_environment"]

DEFAULT_CONCURRENCY = 64
_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})")
# Secrets this short cannot be masked in free text without masking every "1" and "ab".
_SHORTEST_SECRET = 3


@dataclass(frozen=True, eq=False, repr=False)  # internal: each method costs start-up
class PromotionConfig:
    """The validated config: the chain and the raw environment tables."""

    path: Path | None
    # Where relative paths in the config resolve from: the config file's own directory.
    rootdir: Path
    chain: tuple[str, ...] = DEFAULT_CHAIN
    concurrency: int = DEFAULT_CONCURRENCY
    # The tables as written: a URL in them may carry a password.
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    shared_checks: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)  # [promotion] as written
    # The file as the reports name it (relative to the invocation directory when inside it).
    shown_as: str | None = None
    # No file found: where discovery looked; "none": --promotion-config=none said so.
    looked_in: str | None = None

    @property
    def label(self) -> str:
        if self.path is None:
            return "(no config file)"
        return self.shown_as or self.path.name

    @property
    def prefix(self) -> str:
        """``tool.promotion.`` for ``[tool.promotion]`` in a pyproject.toml."""
        return "tool.promotion." if self.path and self.path.name == "pyproject.toml" else ""

    def chain_name(self, name: str) -> str | None:
        """The chain's own spelling of ``name`` (``prod`` -> ``production``), or None."""
        return chain_name(name, self.chain)

    def environment(self, name: str) -> Environment:
        """Resolve one environment: ``${VAR}``, dotenv, placeholders, checks."""
        return resolve_environment(self, self.chain_name(name) or canonical(name))


class _Resolver:
    """Substitutes ``${VAR}`` (and ``$$``) and remembers the values as secrets, except
    those of the variables listed in ``public``."""

    def __init__(
        self, values: Mapping[str, str], source: str, public: frozenset[str] = frozenset()
    ) -> None:
        self.values, self.source, self.public = values, source, public
        self.secrets = SecretRegistry()

    def __call__(self, value: Any, key: str, where: str) -> Any:
        if isinstance(value, str):
            return self._string(value, key, where)
        if isinstance(value, list):
            return [self(v, key, where) for v in value]
        if isinstance(value, dict):
            return {k: self(v, f"{key}.{k}", where) for k, v in value.items()}
        return value

    def _string(self, value: str, key: str, where: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m["name"]
            if name is None:
                return "$"
            found = self.values.get(name)
            if found is None:
                if m["default"] is None:
                    raise ConfigError(
                        f"{where} key {key!r}: ${{{name}}} is not set (expected in {self.source})"
                    )
                return m["default"]  # written in the config file: not a secret
            if name not in self.public:
                if 0 < len(found) < _SHORTEST_SECRET:  # empty: nothing to hide
                    raise ConfigError(
                        f"{where} key {key!r}: ${{{name}}} has {len(found)} character(s), too "
                        f'short to mask as a secret (list it in public = ["{name}"] if it is '
                        "not a secret)"
                    )
                self.secrets.add(found)
            return found

        resolved = _VAR.sub(sub, value)
        self.secrets.add_from_url(resolved)
        return resolved


def resolve_environment(config: PromotionConfig, name: str) -> Environment:
    """The environment ``name`` of ``config`` with every value resolved and checked."""
    if name not in config.chain:
        raise ConfigError(f"unknown environment {name!r}; known: {', '.join(config.chain)}")
    _refuse_unconfigured_last(config, name)
    table_name = f"{config.prefix}environments.{name}"
    table = dict(config.tables.get(name, {}))
    where = f"{config.label}: [{table_name}]"
    values, source, notes = _variables(config, table, where)
    resolve = _Resolver(values, source, frozenset(table.get("public", ())))
    settings = {k: resolve(v, k, where) for k, v in table.items() if k != "checks"}
    services = _services(settings)
    _check_urls({"base_url": settings.get("base_url"), **services}, where, resolve.secrets.values)
    placeholders: dict[str, str] = {
        "env": name,
        "base_url": settings.get("base_url", ""),
        # {python} is the interpreter running pytest, so a command check uses the same venv.
        "python": sys.executable,
        **services,
    }
    checks = _checks(config, name, table, resolve, placeholders, settings.get("base_url"))
    last = name == config.chain[-1]
    return Environment(
        name=name,
        base_url=settings.get("base_url"),
        ca_bundle=_ca_bundle(config, settings, table, where),
        insecure=settings.get("insecure", False),
        timeout=float(settings.get("timeout", DEFAULT_TIMEOUT)),
        rollback=_rollback_argv(settings.get("rollback"), name, where),
        rollback_timeout=float(settings.get("rollback_timeout", DEFAULT_ROLLBACK_TIMEOUT)),
        allow_waivers=settings.get("allow_waivers", not last),
        allow_skips=settings.get("allow_skips", not last),
        hosts=tuple(settings.get("hosts", ())),
        services=services,
        vars=settings.get("vars", {}),
        checks=tuple(checks),
        secrets=resolve.secrets.values,
        rootdir=config.rootdir,
        warnings=tuple(_warnings(config, name, settings, resolve.secrets.values)),
        notes=tuple(notes),
    )


def _services(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The service URLs of an environment's settings (``redis = "redis://..."``): every
    key that is not an environment key names a service kind (checked at load)."""
    if settings.keys() <= ENV_KEYS.keys():
        return {}  # the checks package is not needed to tell
    from .checks import registry

    return {k: settings[k] for k in registry.services() if k in settings}


def _refuse_unconfigured_last(config: PromotionConfig, name: str) -> None:
    """With no config file, the last environment of the chain (prod) would run with no
    health check and no rollback command: only when --promotion-config=none says so."""
    if config.path is None and config.looked_in != "none" and name == config.chain[-1]:
        raise ConfigError(
            f"--env {name}: no config file found ({config.looked_in or 'nowhere to look'}); "
            f"{name} is the last environment of the chain: give --promotion-config PATH, "
            "or --promotion-config=none to run it with no config on purpose"
        )


def _warnings(
    config: PromotionConfig, name: str, settings: Mapping[str, Any], secrets: tuple[str, ...]
) -> list[str]:
    warnings = []
    if config.path is None and config.looked_in != "none":
        warnings.append(
            f"no config file found ({config.looked_in}): {name} runs the default chain "
            "with no declarative checks and no rollback command"
        )
    base_url = settings.get("base_url")
    if (
        isinstance(base_url, str)
        and base_url.lower().startswith("http://")
        and not settings.get("insecure", False)
    ):
        shown = redact(redact_url(base_url), secrets)
        warnings.append(
            f"TLS is not used for {name}: base_url {shown} is http:// (use https://, or set "
            "insecure = true to say it is on purpose)"
        )
    return warnings


def _variables(
    config: PromotionConfig, table: Mapping[str, Any], where: str
) -> tuple[dict[str, str], str, list[str]]:
    """What ``${VAR}`` resolves from (the dotenv file, then the process environment, which
    wins), how to name that source in an error, and notes for the header."""
    values: dict[str, str] = {}
    if "dotenv" not in table:
        values.update(os.environ)
        return values, "the process environment", []
    dotenv_path = Path(table["dotenv"])
    if not dotenv_path.is_absolute():
        dotenv_path = config.rootdir / dotenv_path
    if not dotenv_path.is_file():
        # As in CI, where the values come from the environment: only an unresolved
        # variable is an error, and it says the file is missing.
        values.update(os.environ)
        note = (
            f"dotenv file {table['dotenv']} not found: variables come from the process environment"
        )
        return values, f"the process environment ({table['dotenv']} not found)", [note]
    from dotenv import dotenv_values

    text = read_text(dotenv_path, f"{where} key 'dotenv': file {table['dotenv']}")
    parsed = dotenv_values(stream=io.StringIO(text))
    values.update({k: v for k, v in parsed.items() if v is not None})
    values.update(os.environ)
    return values, f"{table['dotenv']} or the process environment", []


def _check_urls(urls: Mapping[str, Any], where: str, secrets: tuple[str, ...]) -> None:
    """base_url and the services' URLs: a port out of range is a mistake found now, not a
    check that crashes later."""
    for key, url in urls.items():
        problem = url_problem(url) if isinstance(url, str) else None
        if problem:
            raise ConfigError(redact(f"{where} key {key!r}: {problem}", secrets))


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be connected to (a port out of range, no host), or None."""
    from urllib.parse import urlsplit

    if "://" not in url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"expected a URL with a port from 1 to 65535, found {redact_url(url)!r} ({exc})"
    if not parts.hostname and parts.scheme in ("http", "https"):
        return f"expected a URL with a host name, found {redact_url(url)!r}"
    return None


def _ca_bundle(
    config: PromotionConfig, settings: Mapping[str, Any], table: Mapping[str, Any], where: str
) -> str | None:
    ca_bundle = settings.get("ca_bundle")
    if ca_bundle is None:
        return None
    ca_path = Path(ca_bundle) if Path(ca_bundle).is_absolute() else config.rootdir / ca_bundle
    if not ca_path.is_file():
        # The value as written: a ${VAR} in it is a secret, and so is its value.
        raise ConfigError(f"{where} key 'ca_bundle': file {table['ca_bundle']} not found")
    return str(ca_path)


def _rollback_argv(rollback: Any, name: str, where: str) -> tuple[str, ...] | None:
    if rollback is None:
        return None
    try:
        argv = tuple(shlex.split(rollback)) if isinstance(rollback, str) else tuple(rollback)
    except ValueError as exc:
        raise ConfigError(f"{where} key 'rollback': {exc}") from None
    if not argv:
        raise ConfigError(f"{where} key 'rollback': expected a command, found an empty string")
    from .rollback import RenderError, render

    try:  # a misspelt placeholder would leave a failed run without its rollback command
        render(argv, {"env": name, "version": "0.0.0", "previous_version": "0.0.0"})
    except RenderError as exc:
        raise ConfigError(f"{where} key 'rollback': {exc}") from None
    return argv


def _fill(value: Any, key: str, where: str, placeholders: Mapping[str, str], table: str) -> Any:
    """``{env}``, ``{base_url}``, ``{python}`` and the services, in a check's values."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            found = placeholders.get(m[1])
            if not found:
                raise ConfigError(
                    f"{where} key {key!r}: {{{m[1]}}} needs [{table}] key {m[1]!r}, "
                    "which is not set"
                )
            return found

        return placeholder_pattern().sub(sub, value)
    if isinstance(value, list):
        return [_fill(v, key, where, placeholders, table) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, f"{key}.{k}", where, placeholders, table) for k, v in value.items()}
    return value


def _raw_checks(
    config: PromotionConfig, name: str, table: Mapping[str, Any]
) -> list[tuple[str, Mapping[str, Any]]]:
    """The environment's own checks, then the shared ``[[checks]]`` that apply to it."""
    prefix = config.prefix
    raw_checks = [(f"{prefix}environments.{name}.checks", c) for c in table.get("checks", [])]
    position = config.chain.index(name)
    for c in config.shared_checks:
        if "environments" in c:
            applies = name in {config.chain_name(n) for n in c["environments"]}
        else:
            first = config.chain_name(c.get("from", config.chain[0])) or config.chain[0]
            applies = position >= config.chain.index(first)
        if applies:
            raw_checks.append((f"{prefix}checks", c))
    return raw_checks


def _checks(
    config: PromotionConfig,
    name: str,
    table: Mapping[str, Any],
    resolve: _Resolver,
    placeholders: Mapping[str, str],
    base_url: str | None,
) -> list[CheckSpec]:
    checks: list[CheckSpec] = []
    seen: set[str] = set()
    table_name = f"{config.prefix}environments.{name}"
    for where_table, raw in _raw_checks(config, name, table):
        from .check_spec import CheckSpec
        from .checks import registry

        kind = registry.kinds_in(raw)[0]  # exactly one: validated at load
        check_name = raw.get("name", kind)
        if check_name in seen:
            raise ConfigError(
                f"{config.label}: [[{where_table}]] two checks named {check_name!r} for {name} "
                "(give each a unique 'name')"
            )
        seen.add(check_name)
        where = f"{config.label}: [[{where_table}]] {check_name!r}"
        spec = {
            k: _fill(resolve(v, k, where), k, where, placeholders, table_name)
            for k, v in raw.items()
            if k not in SHARED_KEYS
        }
        _check_spec(kind, spec, raw, where, resolve.secrets.values, base_url, table_name)
        checks.append(
            CheckSpec(
                name=check_name,
                kind=kind,
                env=name,
                spec=spec,
                where=f"{config.label} [[{where_table}]] {check_name!r}",
                trigger=raw.get("trigger"),
            )
        )
    return checks


def _check_spec(
    kind: str,
    spec: Mapping[str, Any],
    raw: Mapping[str, Any],
    where: str,
    secrets: tuple[str, ...],
    base_url: str | None,
    table_name: str,
) -> None:
    """What only the resolved values can tell: the kind's own validation of values that
    had ``${VAR}`` or ``{placeholder}`` in them, URLs, a path with no base_url to join."""
    from .checks import fleet, registry
    from .checks.base import CheckConfigError

    value = spec.get(kind)
    if isinstance(value, str):
        problem = url_problem(value)
        if problem:
            raise ConfigError(redact(f"{where} key {kind!r}: {problem}", secrets))
        # An http path joins base_url (a fleet's targets give base URLs of their own).
        if kind == "http" and "://" not in value and not base_url and not fleet.wanted(spec):
            raise ConfigError(
                f"{where} key 'http': {value!r} is a path, but [{table_name}] has no "
                "base_url (set base_url, or give a full URL)"
            )
    if has_substitution(raw):
        try:
            registry.get(kind).validate(spec, where)
        except CheckConfigError as exc:
            raise ConfigError(redact(str(exc), secrets)) from None
