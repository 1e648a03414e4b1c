"""Load and validate ``promotion.toml`` (or ``[tool.promotion]`` in ``pyproject.toml``).

Everything a user can get wrong here ends in a :class:`ConfigError` whose message is one
line naming the file, the table and the key, what was expected and what was found (the
key tables are in schema.py). ``${VAR}`` values are resolved only for the target
environment, in resolve.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .environment import (
    ALIASES,
    DEFAULT_CHAIN,
    DEFAULT_ROLLBACK_TIMEOUT,
    DEFAULT_TIMEOUT,
    Environment,
    canonical,
    chain_name,
    read_text,
)
from .resolve import DEFAULT_CONCURRENCY, PromotionConfig
from .schema import (
    NAME_RE,
    PROMOTION_KEYS,
    ConfigError,
    check_seconds,
    check_table,
    env_keys,
    type_error,
    validate_check,
)

if TYPE_CHECKING:
    from .check_spec import CheckSpec

__all__ = [
    "ALIASES",
    "DEFAULT_CHAIN",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_ROLLBACK_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "NAME_RE",
    "CheckSpec",
    "ConfigError",
    "Environment",
    "PromotionConfig",
    "canonical",
    "chain_name",
    "find_config",
    "load_config",
    "read_text",
]

NO_CONFIG = "none"  # --promotion-config=none: no config file, on purpose


def _has_tool_promotion(pyproject: Path) -> bool:
    """Whether a pyproject.toml has a [tool.promotion] table (an unreadable or invalid
    one counts: loading it then says what is wrong)."""
    import tomllib

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    tool = data.get("tool")
    return isinstance(tool, dict) and "promotion" in tool


def _in_dir(directory: Path) -> tuple[Path | None, bool]:
    """promotion.toml, else a pyproject.toml with [tool.promotion], in ``directory``."""
    candidate = directory / "promotion.toml"
    if candidate.is_file():
        return candidate, False
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file() and _has_tool_promotion(pyproject):
        return pyproject, True
    return None, False


def _upwards(start: Path) -> list[Path]:
    """``start`` and its parents up to the repository root (the first with .git or .hg);
    only ``start`` when it is in no repository."""
    dirs = []
    for directory in (start, *start.parents):
        dirs.append(directory)
        if (directory / ".git").exists() or (directory / ".hg").exists():
            return dirs
    return [start]


def find_config(
    rootdir: Path, explicit: str | None, invocation_dir: Path | None = None
) -> tuple[Path | None, bool]:
    """The config file and whether it is a pyproject.toml (``[tool.promotion]``).

    ``--promotion-config`` wins; else promotion.toml, then [tool.promotion] in
    pyproject.toml, in the rootdir; else the same two in the invocation directory and its
    parents up to the repository root (the first directory that has either wins)."""
    if explicit and explicit != NO_CONFIG:
        path = Path(explicit)
        if not path.is_absolute():
            path = (invocation_dir or Path.cwd()) / path
        if not path.is_file():
            raise ConfigError(f"--promotion-config {explicit}: file not found")
        return path, path.name == "pyproject.toml"
    if explicit == NO_CONFIG:
        return None, False
    found = _in_dir(rootdir)  # the usual case: no walk up the tree
    if found[0] is not None:
        return found
    for directory in _upwards(invocation_dir or Path.cwd()):
        found = _in_dir(directory)
        if found[0] is not None:
            return found
    return None, False


def _shown_as(path: Path, invocation_dir: Path, rootdir: Path) -> str:
    """How reports name the config file: relative to where pytest was started, or to the
    rootdir, when it is there or below; else its absolute path."""
    if path.parent == invocation_dir:  # the usual case, no file system call
        return path.name
    resolved = path.resolve()
    for base in (invocation_dir, rootdir):
        try:
            return str(resolved.relative_to(base.resolve()))
        except ValueError:
            continue
    return str(resolved)


def load_config(
    rootdir: Path, explicit: str | None = None, invocation_dir: Path | None = None
) -> PromotionConfig:
    """Read and validate the config (every environment's keys and types).

    ``invocation_dir`` is where pytest was started (default: the current directory);
    ``explicit`` is --promotion-config (``"none"``: no config file, on purpose)."""
    invocation_dir = invocation_dir or Path.cwd()
    path, is_pyproject = find_config(rootdir, explicit, invocation_dir)
    if path is None:
        looked = NO_CONFIG if explicit == NO_CONFIG else _looked_in(rootdir, invocation_dir)
        return PromotionConfig(path=None, rootdir=rootdir, looked_in=looked)
    import tomllib  # only when there is a file to read: it is not free at start-up

    shown = _shown_as(path, invocation_dir, rootdir)
    try:
        data = tomllib.loads(read_text(path, shown))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: invalid TOML: {exc}") from None
    prefix = ""
    if is_pyproject:
        tool = data.get("tool", {})
        if not isinstance(tool, dict):
            raise type_error(shown, "top level", "tool", "table", tool)
        table = tool.get("promotion")
        if table is None:  # an explicit pyproject.toml with no [tool.promotion]
            return PromotionConfig(
                path=None, rootdir=rootdir, looked_in=f"no [tool.promotion] in {shown}"
            )
        if not isinstance(table, dict):
            raise type_error(shown, "tool", "promotion", "table", table)
        data, prefix = table, "tool.promotion."
    return _validate(path, shown, data, prefix)


def _looked_in(rootdir: Path, invocation_dir: Path) -> str:
    dirs = dict.fromkeys(str(d) for d in [rootdir, *_upwards(invocation_dir)])
    return "looked for promotion.toml and [tool.promotion] in pyproject.toml in " + ", ".join(dirs)


def _validate(path: Path, file: str, data: dict[str, Any], prefix: str) -> PromotionConfig:
    check_table(
        file,
        prefix.rstrip(".") or "top level",
        data,
        {"promotion": "table", "environments": "table", "checks": "list"},
    )
    promotion = data.get("promotion", {})
    check_table(file, f"{prefix}promotion", promotion, PROMOTION_KEYS)
    chain = _chain(file, prefix, promotion)
    concurrency = promotion.get("concurrency", DEFAULT_CONCURRENCY)
    if concurrency < 1:
        raise ConfigError(
            f"{file}: [{prefix}promotion] key 'concurrency': expected >= 1, found {concurrency}"
        )
    tables = _environment_tables(file, prefix, data.get("environments", {}), chain)
    shared = tuple(data.get("checks", []))
    for index, check in enumerate(shared):
        validate_check(file, f"{prefix}checks", index, check, shared=True)
        for key in ("environments", "from"):
            names = check.get(key, [])
            for n in [names] if isinstance(names, str) else names:
                if chain_name(n, chain) is None:
                    raise ConfigError(
                        f"{file}: [[{prefix}checks]] #{index + 1} key {key!r}: "
                        f"{n!r} is not in the chain {list(chain)}"
                    )
    return PromotionConfig(
        path=path,
        # Relative paths in the config (dotenv, ca_bundle, reports) are the file's own.
        rootdir=path.parent,
        chain=chain,
        concurrency=concurrency,
        tables=tables,
        shared_checks=shared,
        options=promotion,
        shown_as=file,
    )


def _chain(file: str, prefix: str, promotion: Mapping[str, Any]) -> tuple[str, ...]:
    """The chain as written: ``production`` stays ``production`` (``prod`` is its alias)."""
    chain = tuple(promotion.get("environments", DEFAULT_CHAIN))
    where = f"{file}: [{prefix}promotion] key 'environments'"
    if not chain:
        raise ConfigError(f"{where}: expected at least one environment, found an empty list")
    for name in chain:
        if not NAME_RE.match(name):
            raise ConfigError(f"{where}: {name!r} is not a valid environment name")
    if len({canonical(n) for n in chain}) != len(chain):
        raise ConfigError(f"{where}: an environment is listed twice: {list(chain)}")
    return chain


def _environment_tables(
    file: str, prefix: str, environments: Mapping[str, Any], chain: tuple[str, ...]
) -> dict[str, Mapping[str, Any]]:
    """Each environment's table under the chain's spelling; two tables for one
    environment (``prod`` and ``production``) are a mistake, not an override."""
    tables: dict[str, Mapping[str, Any]] = {}
    written: dict[str, str] = {}
    for raw_name, table in environments.items():
        name = chain_name(raw_name, chain)
        tname = f"{prefix}environments.{raw_name}"
        if name is None:
            raise ConfigError(
                f"{file}: [{tname}] is not in the chain {list(chain)} "
                f"(add it to [{prefix}promotion] environments)"
            )
        if name in written:
            raise ConfigError(
                f"{file}: [{tname}] and [{prefix}environments.{written[name]}] are the same "
                f"environment ({name}): keep one table"
            )
        if not isinstance(table, dict):
            raise type_error(file, f"{prefix}environments", raw_name, "table", table)
        check_table(file, tname, table, env_keys())
        for key in ("timeout", "rollback_timeout"):  # a number, finite: checked above
            if key in table and table[key] <= 0:
                raise ConfigError(
                    f"{file}: [{tname}] key {key!r}: expected > 0, found {table[key]}"
                )
        check_seconds(f"{file}: [{tname}]", table)
        for index, check in enumerate(table.get("checks", [])):
            validate_check(file, f"{tname}.checks", index, check, shared=False)
        if "watch" in table:  # watch seam: the window's keys and durations, one-line errors
            _validate_watch(file, tname, table["watch"])
        tables[name] = table
        written[name] = raw_name
    return tables


def _validate_watch(file: str, table: str, watch: Mapping[str, Any]) -> None:
    from .watch.settings import parse_settings

    try:
        parse_settings(watch, f"{file}: [{table}.watch]")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def __getattr__(name: str) -> Any:
    """``CheckSpec`` on first use (check_spec.py: loaded where there are checks)."""
    if name == "CheckSpec":
        from .check_spec import CheckSpec

        return CheckSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
