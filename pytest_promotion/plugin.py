"""pytest-promotion's hooks: options, configuration, selection, records, session end.

Without ``--env`` (nor ``PROMOTION_ENV``, nor ini ``promotion_env``) the plugin only
registers its markers and fixtures: an ordinary suite runs exactly as before.
"""

from __future__ import annotations

import os

import pytest

from .fixtures import gate, http, probe, promotion_env  # noqa: F401 - fixtures exported to pytest

ENV_VAR = "PROMOTION_ENV"
VERSION_VAR = "PROMOTION_VERSION"
PREVIOUS_VERSION_VAR = "PROMOTION_PREVIOUS_VERSION"
BASE_MARKERS = ("dev", "staging", "prod")


def _valid_name(value: str) -> bool:
    # Imported here: a run without a target environment loads nothing of the config.
    from .schema import NAME_RE

    return bool(NAME_RE.match(value))


def _env_name(value: str) -> str:
    if not _valid_name(value):
        raise ValueError(value)
    return value


def _waiver(value: str) -> tuple[str, str]:
    gate_name, sep, reason = value.partition("=")
    if not sep or not gate_name.strip() or not reason.strip():
        raise ValueError(value)
    return gate_name.strip(), reason.strip()


_env_name.__name__ = "environment name ([A-Za-z0-9][A-Za-z0-9._-]{0,63})"
_waiver.__name__ = "waiver (GATE=REASON, both non-empty)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promotion", "environment promotion gates")
    group.addoption(
        "--env",
        dest="promotion_env",
        metavar="NAME",
        type=_env_name,
        help=f"target environment; runs its gates and decides (also ${ENV_VAR}, ini promotion_env)",
    )
    group.addoption(
        "--promotion-config",
        metavar="PATH",
        help="config file (default: promotion.toml in the rootdir, else [tool.promotion] in pyproject.toml)",
    )
    group.addoption(
        "--promotion-report", metavar="PATH", help="write the decision as JSON (atomically)"
    )
    group.addoption(
        "--promotion-version",
        metavar="VERSION",
        help=f"the version being promoted (also ${VERSION_VAR})",
    )
    group.addoption(
        "--promotion-previous-version",
        metavar="VERSION",
        help=f"the version to roll back to, for {{previous_version}} (also ${PREVIOUS_VERSION_VAR})",
    )
    group.addoption(
        "--promotion-rollback",
        choices=("print", "execute"),
        default="print",
        help="print the rollback command (default) or run it when the decision is not promote",
    )
    group.addoption(
        "--waive",
        dest="promotion_waivers",
        action="append",
        default=[],
        type=_waiver,
        metavar="GATE=REASON",
        help="record a waiver for one gate (refused where the environment forbids waivers)",
    )
    parser.addini("promotion_env", "default target environment for promotion gates", default="")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def _resolve_env(config: pytest.Config) -> str | None:
    """CLI > environment variable > ini, in one place."""
    value = (
        config.getoption("promotion_env")
        or os.environ.get(ENV_VAR)
        or config.getini("promotion_env")
    )
    if not value:
        return None
    value = str(value)
    if not _valid_name(value):
        source = (
            "--env"
            if config.getoption("promotion_env")
            else ENV_VAR
            if os.environ.get(ENV_VAR)
            else "ini promotion_env"
        )
        raise pytest.UsageError(
            f"{source}: {value!r} is not an environment name "
            "(expected letters, digits, '.', '_' or '-', at most 64)"
        )
    return value


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    for name in BASE_MARKERS:
        config.addinivalue_line(
            "markers",
            f"{name}(only=False): promotion gate for {name} and, unless only=True, every later environment",
        )
    config.addinivalue_line(
        "markers",
        "probe(kind, value, name=None, **keys): start this check early, with the declarative "
        "ones; read it with probe.result(name)",
    )
    config.addinivalue_line(
        "markers",
        "gate(name=None, trigger='block'): promotion gate metadata; "
        "trigger='rollback' makes a failure a rollback trigger",
    )
    env = _resolve_env(config)
    if env is None:
        return
    from .session import PromotionSession

    session = PromotionSession.start(config, env)
    for name in session.promotion.chain:  # a custom chain's names are markers too
        if name not in BASE_MARKERS:
            config.addinivalue_line("markers", f"{name}(only=False): promotion gate for {name}")
    config.pluginmanager.register(session, "promotion-session")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.pluginmanager.get_plugin("promotion-session")
    if session is not None:
        session.finish_unconfigure()
        config.pluginmanager.unregister(session)
