"""The shape of the config: which keys each table takes, of which type, and the one-line
errors that name file, table and key."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checks.registry import KindRegistry

# An environment or check name: safe in ids, file names and commands.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Values put into the rollback command come from the command line and the environment:
# they must look like names and versions, never like options or shell syntax.
VALUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")

__all__ = [
    "CHECK_COMMON",
    "ENV_KEYS",
    "NAME_RE",
    "PROMOTION_KEYS",
    "SHARED_KEYS",
    "VALUE_RE",
    "ConfigError",
    "check_table",
    "check_type",
    "has_substitution",
    "placeholder_pattern",
    "type_error",
    "validate_check",
]


def _registry() -> KindRegistry:
    # Imported on first use: a run with neither a config file nor a check never loads
    # the checks package (~10 M instructions).
    from .checks import registry

    return registry


class ConfigError(Exception):
    """A configuration mistake, explained in one line."""


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
    "ledger": ((str, bool), "a sqlite:/// or postgresql:// URL, or false"),
    "duration": ((str, int, float), "a duration (90m, 24h) or a number of seconds"),
}
PROMOTION_KEYS = {
    "environments": "list[str]",
    "concurrency": "int",
    "ledger": "ledger",  # the ledger (docs/ledger.md)
    "lock_timeout": "duration",
}
ENV_KEYS = {
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
    "public": "list[str]",
    "vars": "table",
    "checks": "list",
    "watch": "table",  # the watch window after a promote (docs/watch.md)
    # a target the run starts itself (launch.py)
    "launch": "argv",
    "ready": "argv",
    "ready_timeout": "number",
    "teardown": "argv",
}
CHECK_COMMON = {
    "name": "str",
    "timeout": "number",
    "trigger": "str",
    "wait": "table",
    "consecutive_successes": "int",
    "description": "str",
}
# only on top-level [[checks]] shared by several environments
SHARED_KEYS = {"environments": "list[str]", "from": "str"}
# The longest timeout anything may ask for (one day): finite for sockets and sleeps.
MAX_SECONDS = 86400.0
_SECONDS_KEYS = ("timeout", "rollback_timeout")


def env_keys() -> dict[str, str]:
    """The keys of an ``[environments.NAME]`` table: ENV_KEYS and one per service kind
    (``redis = "redis://..."``), built-in or added by a plugin."""
    return {**ENV_KEYS, **dict.fromkeys(_registry().services(), "str")}


def check_seconds(where: str, table: Mapping[str, Any]) -> None:
    """``timeout`` and ``rollback_timeout``: > 0 and at most a day (their type is checked)."""
    for key in _SECONDS_KEYS:
        value = table.get(key)
        if value is not None and not 0 < value <= MAX_SECONDS:
            raise ConfigError(
                f"{where} key {key!r}: expected a number of seconds > 0 and <= 86400, found {value}"
            )


def type_error(file: str, table: str, key: str, kind: str, value: object) -> ConfigError:
    found = type(value).__name__
    if isinstance(value, str):
        found = f"string {value!r}"
    elif isinstance(value, bool):
        found = f"boolean {str(value).lower()}"
    elif isinstance(value, _NUMBER):
        found = f"number {value}"
    expected = _TYPES[kind][1] if kind in _TYPES else "a list of tables"
    return ConfigError(f"{file}: [{table}] key {key!r}: expected {expected}, found {found}")


def check_table(file: str, table: str, data: Mapping[str, Any], allowed: Mapping[str, str]) -> None:
    for key, value in data.items():
        kind = allowed.get(key)
        if kind is None:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"{file}: [{table}] unknown key {key!r} (known keys: {known})")
        check_type(file, table, key, kind, value)


def check_type(file: str, table: str, key: str, kind: str, value: object) -> None:
    if kind == "list":
        if not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            raise type_error(file, table, key, kind, value)
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
        raise type_error(file, table, key, kind, value)


@functools.lru_cache(maxsize=8)
def _patterns(names: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    alternatives = "|".join(map(re.escape, names))
    return re.compile(rf"\{{({alternatives})\}}"), re.compile(rf"\$\{{|\{{(?:{alternatives})\}}")


def placeholder_pattern() -> re.Pattern[str]:
    """``{env}``, ``{base_url}``, ``{python}`` and every service's ``{name}`` (the
    registry's names), the name as group 1."""
    return _patterns(_registry().placeholders())[0]


def has_substitution(value: Any) -> bool:
    """Whether a value (or any string inside it) still has ${VAR} or a {placeholder}."""
    if isinstance(value, str):
        return bool(_patterns(_registry().placeholders())[1].search(value))
    if isinstance(value, list):
        return any(has_substitution(v) for v in value)
    if isinstance(value, dict):
        return any(has_substitution(v) for v in value.values())
    return False


def validate_check(file: str, table: str, index: int, check: dict[str, Any], shared: bool) -> None:
    from .checks.base import CheckConfigError

    label = repr(check["name"]) if isinstance(check.get("name"), str) else f"#{index + 1}"
    where = f"{file}: [[{table}]] {label}"
    kind = _kind_of(check, where)
    allowed = dict(CHECK_COMMON)
    if shared:
        allowed.update(SHARED_KEYS)
    for key, value in check.items():
        if key in allowed:
            check_type(file, f"[{table}] {label}".strip("[]"), key, allowed[key], value)
        else:
            _check_kind_key(kind, key, value, allowed, where)
    _check_common(check, where)
    try:
        # Values with ${VAR} or {placeholder} are judged once resolved (resolve.py);
        # the rest now, so a mistake in prod's checks shows in a dev run too.
        if not has_substitution(check):
            _registry().get(kind).validate(check, where)
        from .watch import relative

        relative.validate(kind, check, where)  # its keys never hold a ${VAR}
        if "wait" in check:
            from .checks.wait import parse_wait

            parse_wait(check["wait"], where)
    except CheckConfigError as exc:
        raise ConfigError(str(exc)) from None


def _kind_of(check: Mapping[str, Any], where: str) -> str:
    from .checks.base import CheckConfigError

    kinds = _registry().kinds_in(check)
    if len(kinds) != 1:
        found = ", ".join(sorted(kinds)) if kinds else "none"
        raise ConfigError(
            f"{where}: expected exactly one check kind ({', '.join(_registry().names())}), "
            f"found {found}"
        )
    try:
        _registry().get(kinds[0])  # a third-party kind that cannot load: named here
    except CheckConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return kinds[0]


def _check_kind_key(
    kind: str, key: str, value: object, allowed: Mapping[str, str], where: str
) -> None:
    from .watch import relative  # relative criteria: keys of every numeric kind

    keys = {**_registry().get(kind).KEYS, **relative.keys_for(kind)}
    types = keys.get(key)
    if types is None:
        known = ", ".join(sorted({*allowed, *keys}))
        raise ConfigError(f"{where}: unknown key {key!r} for a {kind} check (known keys: {known})")
    types = types if isinstance(types, tuple) else (types,)
    numeric = float in types and isinstance(value, int) and not isinstance(value, bool)
    if not (isinstance(value, types) or numeric) or (isinstance(value, bool) and bool not in types):
        names = " or ".join(t.__name__ for t in types)
        raise ConfigError(
            f"{where}: key {key!r}: expected {names}, found {type(value).__name__} {value!r}"
        )


def _check_common(check: Mapping[str, Any], where: str) -> None:
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
    check_seconds(f"{where}:", check)
