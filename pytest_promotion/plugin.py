"""pytest-promotion's hooks: options, configuration, selection, records, session end.

Without ``--env`` (nor ``PROMOTION_ENV``, nor ini ``promotion_env``) the plugin only
registers its markers and fixtures: an ordinary suite runs exactly as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from .fixtures import gate, http, probe, promotion_env  # noqa: F401 - fixtures exported to pytest

# Masks what reaches the terminal, log files and --debug (a plugin: it wraps the streams
# before capture starts, which a hook in this module, run inside capture, cannot do).
pytest_plugins = ["pytest_promotion.screen"]

ENV_VAR = "PROMOTION_ENV"
VERSION_VAR = "PROMOTION_VERSION"
PREVIOUS_VERSION_VAR = "PROMOTION_PREVIOUS_VERSION"
BASE_MARKERS = ("dev", "staging", "prod")
# The run's Decision (set at session finish) and whether the placeholder report is written.
DECISION_KEY = pytest.StashKey[Any]()
PLACEHOLDER_KEY = pytest.StashKey[Path]()


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
        "--promotion-artifact",
        metavar="DIGEST",
        help="what identifies the bits being promoted, e.g. an image digest (also $PROMOTION_ARTIFACT)",
    )
    group.addoption(
        "--promotion-ledger",
        metavar="URL",
        help="the ledger: sqlite:///PATH, postgresql://... or false (also $PROMOTION_LEDGER)",
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
    group.addoption(
        "--promotion-plan",
        action="store_true",
        help="list the gates --env would run, with trigger and threshold; run nothing, decide nothing",
    )
    from .watch.plugin import addoption as watch_addoption

    watch_addoption(group)  # watch seam: --promotion-watch DURATION
    parser.addini("promotion_env", "default target environment for promotion gates", default="")


def _requested_env(config: pytest.Config, namespace: Any = None) -> str | None:
    """The target environment asked for, unvalidated (CLI > environment variable > ini, in
    this one place), or None: an inert run."""
    option = namespace if namespace is not None else config.option
    value = getattr(option, "promotion_env", None) or os.environ.get(ENV_VAR)
    if not value:
        try:
            value = config.getini("promotion_env")
        except ValueError:  # pragma: no cover - not registered: the plugin is not loaded
            value = None
    return str(value) if value else None


def write_placeholder(config: pytest.Config, report: str, env: str, namespace: Any = None) -> None:
    """Replace the previous run's report by a "block" at once: a run that ends in a usage
    error, a crash or a kill must not leave an old "promote" behind."""
    from .reporting.json_report import placeholder, write_atomic

    option = namespace if namespace is not None else config.option
    version = getattr(option, "promotion_version", None) or os.environ.get(VERSION_VAR)
    path = Path(report).resolve()
    try:
        write_atomic(path, placeholder(env, version))
    except OSError as exc:
        raise pytest.UsageError(
            f"--promotion-report {report}: cannot write: {exc.strerror or exc}"
        ) from None
    config.stash[PLACEHOLDER_KEY] = path


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """The placeholder report, written before any conftest, config file or environment is
    read. An xdist worker cannot be told apart this early (PYTEST_XDIST_WORKER is also
    inherited by any pytest a test starts): it writes the same placeholder again while the
    controller is still waiting for it, which changes nothing; the final report is written
    by the controller after every worker has ended."""
    namespace = early_config.known_args_namespace
    report = getattr(namespace, "promotion_report", None)
    if report and not getattr(namespace, "promotion_plan", False):  # a dry run writes nothing
        env = _requested_env(early_config, namespace)
        if env:
            write_placeholder(early_config, report, env, namespace)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, Any, Any]:
    """The last word on a gate run's exit status: whatever ended it (pytest.exit(returncode=0)
    in a conftest's sessionstart or configure, a plugin that stops the run), it exits 0 only
    when it decided "promote". --help, --version and --markers are not gate runs."""
    result = yield
    if hasattr(config, "workerinput") or _requested_env(config) is None:
        return result
    option = config.option
    if (
        getattr(option, "help", False)
        or getattr(option, "version", 0)
        or getattr(option, "markers", False)
        or getattr(option, "promotion_plan", False)  # a dry run decides nothing (plan.py)
    ):
        return result
    if result not in (0, pytest.ExitCode.OK):
        return result
    decision = config.stash.get(DECISION_KEY, None)
    if decision is None:
        sys.stderr.write(
            "promotion: the run ended before a decision was made (pytest.exit, or a plugin "
            f"that stopped it): exit {int(pytest.ExitCode.INTERNAL_ERROR)}, not 0\n"
        )
        return pytest.ExitCode.INTERNAL_ERROR
    if not decision.promote:
        return pytest.ExitCode.TESTS_FAILED
    return result


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def _resolve_env(config: pytest.Config) -> str | None:
    """The target environment (CLI > environment variable > ini: see _requested_env),
    validated as a name."""
    value = _requested_env(config)
    if value is None:
        return None
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
    from .checks import registry

    config.add_cleanup(registry.add_from_hook(config))  # third-party kinds, before the config
    if config.getoption("promotion_plan"):  # a dry run: plan.py lists, nothing runs
        from .plan import PlanPlugin

        config.pluginmanager.register(PlanPlugin(config, env), "promotion-plan")
        return
    from .launch import launch_target
    from .ledger.plugin import install as install_ledger
    from .session import PromotionSession

    install_ledger(config)  # the ledger's plugin (controller) or run context (worker)
    launch_target(config, env)  # an environment that starts its own target (launch = [...])
    session = PromotionSession.start(config, env)
    for name in session.promotion.chain:  # a custom chain's names are markers too
        if name not in BASE_MARKERS:
            config.addinivalue_line("markers", f"{name}(only=False): promotion gate for {name}")
    config.pluginmanager.register(session, "promotion-session")
    from .checks.fleet import configure as configure_fleet

    configure_fleet(session.promotion.concurrency)  # xdist workers run fleet checks too
    if not session.is_worker:
        from .probing import ProbeStarter

        starter = ProbeStarter(config, session.environment, session.promotion.concurrency)
        config.pluginmanager.register(starter, "promotion-probes")
        from .progress import Heartbeat  # "running for 30 s" lines for long gates

        config.pluginmanager.register(Heartbeat(config), "promotion-heartbeat")
        from .watch.plugin import install as install_watch

        install_watch(config, session.promotion, session.environment)  # watch seam


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    starter = config.pluginmanager.get_plugin("promotion-probes")
    if starter is not None:
        config.pluginmanager.unregister(starter)
    session = config.pluginmanager.get_plugin("promotion-session")
    if session is not None:
        session.finish_unconfigure()
        config.pluginmanager.unregister(session)
