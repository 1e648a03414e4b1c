"""The ledger's settings for one run: which store, the lock timeout, the run's facts
(version and its source, artifact, actor, CI run, git commit, config hash)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..redact import redact_url
from .context import RunContext
from .identity import actor, ci_run_url, config_hash, git_facts, parse_duration
from .switch import LEDGER_VAR, is_off, setting
from .url import DEFAULT_URL, LedgerError, resolve_url

__all__ = ["ARTIFACT_VAR", "DEFAULT_LOCK_TIMEOUT", "LEDGER_VAR", "build_context", "ledger_url"]

ARTIFACT_VAR = "PROMOTION_ARTIFACT"
DEFAULT_LOCK_TIMEOUT = 600.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def ledger_url(
    option: str | None, options: Mapping[str, Any], environ: Mapping[str, str], where: str
) -> tuple[str | None, tuple[str, ...]]:
    """(the ledger URL with ``${VAR}`` resolved, or None when off; the values substituted,
    which are secrets). CLI > ``PROMOTION_LEDGER`` > ``[promotion] ledger`` > the default."""
    value, source = setting(option, options, environ, where)
    if value is None:
        value = DEFAULT_URL
    if is_off(value):
        return None, ()
    if not isinstance(value, str):
        raise LedgerError(
            f"{source}: expected a sqlite:/// or postgresql:// URL or false, found {value!r}"
        )
    secrets = []

    def sub(m: re.Match[str]) -> str:
        found = environ.get(m[1])
        if found is None:
            raise LedgerError(f"{source}: ${{{m[1]}}} is not set (expected in the environment)")
        secrets.append(found)
        return found

    url = _VAR.sub(sub, value)
    try:
        resolve_url(url, Path("."))
    except LedgerError as exc:
        raise LedgerError(f"{source}: {str(exc).removeprefix('ledger ')}") from None
    return url, tuple(s for s in secrets if s)


def lock_timeout(options: Mapping[str, Any], where: str) -> float:
    if "lock_timeout" not in options:
        return DEFAULT_LOCK_TIMEOUT
    try:
        return parse_duration(options["lock_timeout"], f"{where}: [promotion] key 'lock_timeout'")
    except ValueError as exc:
        raise LedgerError(str(exc)) from None


def build_context(
    *,
    environment: str,
    chain: tuple[str, ...],
    config_path: Path | None,
    rootdir: Path,
    options: Mapping[str, Any],
    ledger_option: str | None,
    version_option: str | None,
    artifact_option: str | None,
    rollback: tuple[str, ...] | None,
    rollback_timeout: float,
    environ: Mapping[str, str] = os.environ,
) -> RunContext:
    """Everything the record and the policy gates need, computed once on the controller."""
    where = config_path.name if config_path else "(no config file)"
    base = config_path.parent if config_path else rootdir
    url, secrets = ledger_url(ledger_option, options, environ, where)
    described, commit = git_facts(base) if url is not None else (None, None)
    if version_option:
        version, source = version_option, "--promotion-version"
    elif environ.get("PROMOTION_VERSION"):
        version, source = environ["PROMOTION_VERSION"], "PROMOTION_VERSION"
    elif described:
        version, source = described, "git describe --tags --always"
    else:
        version, source = None, None
    who, who_source = actor(environ)
    return RunContext(
        environment=environment,
        chain=chain,
        url=url,
        base=str(base),
        version=version,
        version_source=source,
        digest=artifact_option or environ.get(ARTIFACT_VAR) or None,
        actor=who,
        actor_source=who_source,
        run_url=ci_run_url(environ),
        commit=commit,
        config_hash=config_hash(config_path),
        rollback=rollback,
        rollback_timeout=rollback_timeout,
        lock_timeout=lock_timeout(options, where),
        secrets=secrets,
    )


def shown(url: str | None) -> str:
    return redact_url(url) if url else "(off)"
