"""pytest-promotion's entry point: options, markers, and the roles of a gate run.

Without ``--env`` (nor ``PROMOTION_ENV``, nor ini ``promotion_env``) the plugin only
registers its markers and fixtures: an ordinary suite runs exactly as before. With a
target environment, ``pytest_configure`` starts the run (:class:`.run.PromotionRun`) and
registers each role where it belongs, once (see docs/architecture.md):

- :class:`.session.Selector` in every process: selection and masking;
- :class:`.relay.WorkerRelay` (and :class:`.session.ReportMasker`) on an xdist worker,
  :class:`.relay.ControllerRelay` on the controller: what travels between them;
- :class:`.collector.Collector` on the controller only: records, decision, reports, exit
  status; :class:`.probing.ProbeStarter` beside it (the concurrent probes); the ledger's
  plugin; the heartbeat and the watch only where they have work to do (each hook
  implementation costs every gate).

The exit status is the decision's (:func:`.finalise.exit_status`), applied before
``pytest_sessionfinish`` and, here in ``pytest_cmdline_main``, at the very end.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from .fixtures import gate, http, probe, promotion_env  # noqa: F401 - fixtures exported to pytest
from .keys import DECISION_KEY, PLACEHOLDER_KEY, RUN_KEY

# Masks what reaches the terminal, log files and --debug (a plugin: it wraps the streams
# before capture starts, which a hook in this module, run inside capture, cannot do).
pytest_plugins = ["pytest_promotion.screen"]

if TYPE_CHECKING:
    from .run import PromotionRun

_FIXTURES = ("gate", "http", "probe", "promotion_env")


def __dir__() -> list[str]:
    """What pluggy (hooks) and pytest (fixtures) look for in this plugin module: pytest
    probes every name ``dir()`` lists for a fixture, ~35 k instructions each (role.py)."""
    return [name for name in globals() if name.startswith("pytest_")] + list(_FIXTURES)


ENV_VAR = "PROMOTION_ENV"
VERSION_VAR = "PROMOTION_VERSION"
PREVIOUS_VERSION_VAR = "PROMOTION_PREVIOUS_VERSION"
BASE_MARKERS = ("dev", "staging", "prod")
# The role objects registered for a gate run, by name (unregistered at unconfigure).
_ROLES = (
    "promotion-selector",
    "promotion-masker",
    "promotion-relay",
    "promotion-collector",
    "promotion-probes",
    "promotion-heartbeat",
)


def _valid_name(value: str) -> bool:
    # Imported here: a run without a target environment loads nothing of the config.
    from .schema import NAME_RE

    return bool(NAME_RE.match(value))


def validate_env_name(value: str) -> str:
    """``--env``: an environment name (argparse shows the message as a usage error)."""
    if not _valid_name(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an environment name (expected [A-Za-z0-9][A-Za-z0-9._-]{{0,63}})"
        )
    return value


def validate_waiver(value: str) -> tuple[str, str]:
    """``--waive GATE=REASON``, both non-empty."""
    gate_name, sep, reason = value.partition("=")
    if not sep or not gate_name.strip() or not reason.strip():
        raise argparse.ArgumentTypeError(f"{value!r}: expected GATE=REASON, both non-empty")
    return gate_name.strip(), reason.strip()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promotion", "environment promotion gates")
    group.addoption(
        "--env",
        dest="promotion_env",
        metavar="NAME",
        type=validate_env_name,
        help=f"target environment; runs its gates and decides (also ${ENV_VAR}, ini promotion_env)",
    )
    group.addoption(
        "--promotion-config",
        metavar="PATH",
        help="config file, or none (default: promotion.toml, else [tool.promotion] in pyproject.toml, "
        "in the rootdir, then in the invocation directory and its parents)",
    )
    group.addoption(
        "--promotion-report",
        metavar="PATH",
        help="write the decision as JSON (atomically; a regular file in an existing directory)",
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
        type=validate_waiver,
        metavar="GATE=REASON",
        help="record a waiver for one gate (refused where the environment forbids waivers)",
    )
    group.addoption(
        "--promotion-plan",
        action="store_true",
        help="list the gates --env would run, with trigger and threshold; run nothing, decide nothing",
    )
    group.addoption(  # defined here: importing the watch package costs every pytest run
        "--promotion-watch",
        metavar="DURATION",
        help="after a promote, watch the environment's health checks for DURATION "
        "(30m, 24h; also the environment's watch table); see docs/watch.md",
    )
    parser.addini("promotion_env", "default target environment for promotion gates", default="")


def _requested_env(config: pytest.Config, namespace: Any = None) -> tuple[str | None, str]:
    """The target environment asked for, unvalidated (CLI > environment variable > ini, in
    this one place), or None: an inert run; and where it came from."""
    option = namespace if namespace is not None else config.option
    value = getattr(option, "promotion_env", None)
    if value:
        return str(value), "--env"
    value = os.environ.get(ENV_VAR)
    if value:
        return value, ENV_VAR
    try:
        value = config.getini("promotion_env")
    except ValueError:  # pragma: no cover - not registered: the plugin is not loaded
        value = None
    return (str(value), "ini promotion_env") if value else (None, "")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """The report paths checked and the placeholder report written before any conftest,
    config file or environment is read. An xdist worker cannot be told apart this early
    (PYTEST_XDIST_WORKER is also inherited by any pytest a test starts): it writes the
    same placeholder again while the controller is still waiting for it, which changes
    nothing; the final report is written by the controller after every worker has ended."""
    from .outputs import check_report_paths, write_placeholder

    namespace = early_config.known_args_namespace
    report = getattr(namespace, "promotion_report", None)
    env, _ = _requested_env(early_config, namespace)
    if env is None and not report:
        return  # an ordinary run: nothing of ours
    if getattr(namespace, "promotion_plan", False):
        return  # a dry run writes nothing
    path = check_report_paths(report, getattr(namespace, "xmlpath", None))
    if path is None:
        return
    version = getattr(namespace, "promotion_version", None) or os.environ.get(VERSION_VAR)
    write_placeholder(path, env, version)
    early_config.stash[PLACEHOLDER_KEY] = path
    if env is None:
        # An empty PROMOTION_ENV= must not leave the last run's "promote" in the report.
        raise pytest.UsageError(
            "--promotion-report needs a target environment: give --env, or set "
            f"{ENV_VAR} (empty here) or ini promotion_env"
        )


def _is_gate_run(config: pytest.Config) -> bool:
    if hasattr(config, "workerinput") or _requested_env(config)[0] is None:
        return False
    option = config.option  # --help, --version and --markers are not gate runs
    return not (
        getattr(option, "help", False)
        or getattr(option, "version", 0)
        or getattr(option, "markers", False)
        or getattr(option, "promotion_plan", False)  # a dry run decides nothing (plan.py)
    )


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, Any, Any]:
    """The last word on a gate run's exit status, after every other hook (a later
    sessionfinish or unconfigure that exits 0, pytest.exit(returncode=0) before the
    session): the decision's (:func:`.finalise.exit_status`)."""
    try:
        result = yield
    except SystemExit as exc:
        if not _is_gate_run(config) or exc.code not in (0, None):
            raise
        result = 0  # sys.exit(0) in a later hook: not the decision's to say
    if not _is_gate_run(config):
        return result
    from .finalise import exit_status

    decision = config.stash.get(DECISION_KEY, None)
    status = exit_status(decision, result)
    if decision is None and status != result:
        sys.stderr.write(
            "promotion: the run ended before a decision was made (pytest.exit, or a plugin "
            f"that stopped it): exit {status}, not 0\n"
        )
    return status


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def _resolve_env(config: pytest.Config) -> tuple[str | None, str]:
    """The target environment (see _requested_env), validated as a name, and its source."""
    value, source = _requested_env(config)
    if value is not None and not _valid_name(value):
        raise pytest.UsageError(
            f"{source}: {value!r} is not an environment name "
            "(expected letters, digits, '.', '_' or '-', at most 64)"
        )
    return value, source


def _add_markers(config: pytest.Config) -> None:
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
        "gate(name=None, trigger='block', watch=False): promotion gate metadata; "
        "trigger='rollback' makes a failure a rollback trigger; watch=True re-runs it "
        "during the watch window",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    _add_markers(config)
    env, source = _resolve_env(config)
    if env is None:
        return
    if config.hook.pytest_promotion_add_kinds.get_hookimpls():  # third-party kinds, before
        from .checks import registry  # the config (else the checks package loads with checks)

        config.add_cleanup(registry.add_from_hook(config))
    if config.getoption("promotion_plan"):  # a dry run: plan.py lists, nothing runs
        from .plan import PlanPlugin

        config.pluginmanager.register(PlanPlugin(config, env), "promotion-plan")
        return
    from .launch import launch_target
    from .run import PromotionRun
    from .session import Selector

    launch_target(config, env)  # an environment that starts its own target (launch = [...])
    run = PromotionRun.start(config, env, source)
    if _ledger_wanted(config, run):  # before the Collector, which asks it for the previous
        from .ledger.plugin import install as install_ledger  # version

        install_ledger(config, run)  # the ledger's plugin (controller) or run context (worker)
    if run.environment.checks:  # xdist workers run fleet checks too; without declarative
        from .checks.fleet import configure as configure_fleet  # checks, none runs

        configure_fleet(run.promotion.concurrency)
    for name in run.promotion.chain:  # a custom chain's names are markers too
        if name not in BASE_MARKERS:
            config.addinivalue_line("markers", f"{name}(only=False): promotion gate for {name}")
    config.stash[RUN_KEY] = run
    manager = config.pluginmanager
    manager.register(Selector(run), "promotion-selector")
    if hasattr(config, "workerinput"):
        from .relay import WorkerRelay
        from .session import ReportMasker

        # On the controller the Collector masks each report as it reads it.
        manager.register(ReportMasker(run.environment), "promotion-masker")
        manager.register(WorkerRelay(run), "promotion-relay")
        return
    _register_controller(config, run)


def _register_controller(config: pytest.Config, run: PromotionRun) -> None:
    """The roles only the controller (or the one process without xdist) plays."""
    from .collector import Collector
    from .outputs import check_report_paths, write_placeholder
    from .probing import ProbeStarter
    from .relay import ControllerRelay

    report_path = config.stash.get(PLACEHOLDER_KEY, None)
    if report_path is None:  # the environment came from a conftest or the ini
        report_path = check_report_paths(
            config.getoption("promotion_report"), config.option.xmlpath
        )
        if report_path is not None:
            write_placeholder(report_path, run.environment.name, run.version)
    collector = Collector(run, report_path)
    manager = config.pluginmanager
    manager.register(collector, "promotion-collector")
    manager.register(ControllerRelay(run, collector.records), "promotion-relay")
    starter = ProbeStarter(config, run.environment, run.promotion.concurrency)
    manager.register(starter, "promotion-probes")
    # Each role below wraps or reads every gate, or costs start-up to import: registered
    # only where it has something to do.
    if run.environment.checks:  # "running for 30 s" lines, for declarative checks only
        from .progress import Heartbeat

        manager.register(Heartbeat(config), "promotion-heartbeat")
    if _watch_wanted(config, run):
        from .watch.plugin import install as install_watch

        install_watch(config, run.promotion, run.environment)  # watch seam: --promotion-watch


def _ledger_wanted(config: pytest.Config, run: PromotionRun) -> bool:
    """Whether the run needs the ledger package: it is on (the default), or it is off and
    yet read, by policy gates (they then fail: "the ledger is off") or a watch; on an xdist
    worker, whether the controller handed it a ledger context."""
    from .ledger.switch import POLICY_KINDS, WORKER_KEY, is_off, setting

    if hasattr(config, "workerinput"):
        return bool(config.workerinput.get(WORKER_KEY))
    promotion = run.promotion
    where = promotion.path.name if promotion.path else "(no config file)"
    value, _ = setting(config.getoption("promotion_ledger"), promotion.options, os.environ, where)
    if not is_off(value) or _watch_wanted(config, run):
        return True
    return any(check.kind in POLICY_KINDS for check in run.environment.checks)


def _watch_wanted(config: pytest.Config, run: PromotionRun) -> bool:
    """``--promotion-watch`` or the environment's ``watch`` table (without either the watch
    package is not imported; a hold on the environment is the ledger's to enforce)."""
    if config.getoption("promotion_watch", None) is not None:
        return True
    return run.promotion.tables.get(run.environment.name, {}).get("watch") is not None


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    for name in _ROLES:
        role = config.pluginmanager.get_plugin(name)
        if role is not None:
            config.pluginmanager.unregister(role)
    if RUN_KEY in config.stash:
        del config.stash[RUN_KEY]
