"""Hooks a conftest or plugin can implement to take part in a promotion run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .checks.base import CheckKind
    from .config import Environment
    from .decision import Decision


@pytest.hookspec(firstresult=True)
def pytest_promotion_rollback_command(
    config: pytest.Config, environment: Environment, decision: Decision
) -> list[str] | str | None:
    """Return the rollback command as an argv list (or a string, split like the configured
    template with shlex, never run through a shell) instead of the configured template.
    Anything else is reported as a warning naming this hook, and there is no command. An
    implementation that raises adds a reason naming this hook; the configured template,
    if any, is used instead.

    Example (conftest.py)::

        def pytest_promotion_rollback_command(config, environment, decision):
            return ["helm", "rollback", "agent", "--namespace", environment.name]
    """


@pytest.hookspec()
def pytest_promotion_decision(config: pytest.Config, decision: Decision) -> None:
    """Called once, on the controller, with the final decision (for notifications),
    after the reports are written. The decision is frozen. An implementation that raises
    blocks the run with one line naming this hook, and every report is written again.

    Example (conftest.py)::

        def pytest_promotion_decision(config, decision):
            if decision.decision != "promote":
                notify_chat(f"{decision.environment}: {decision.decision}")
    """


@pytest.hookspec(firstresult=True)
def pytest_promotion_previous_version(
    config: pytest.Config, environment: Environment
) -> tuple[str | None, str] | None:
    """Return ``(version, source)``: the version a rollback of ``environment`` goes back
    to, and where that answer came from (``"ledger sqlite:///..."``). ``version`` is None
    when the source knows there is none (the environment's first promotion). Return None
    for no answer. Asked at the start of a run, on the controller, only when neither
    ``--promotion-previous-version`` nor ``PROMOTION_PREVIOUS_VERSION`` is given. The
    version must be a plain name or version; an implementation that raises is a usage
    error naming this hook.

    Example (conftest.py)::

        def pytest_promotion_previous_version(config, environment):
            return (read_deployed_version(environment.name), "deploy tool")
    """


@pytest.hookspec()
def pytest_promotion_finalize(config: pytest.Config, decision: Decision) -> list[str] | None:
    """Return reasons to block this run (never to promote it), once the gates are decided
    and before the rollback, the reports and the exit status. Called once, on the
    controller. Every reason returned turns a promote into a block and is added to the
    decision's reasons; an implementation that raises blocks the run with one line
    naming it. The ledger uses it when the run's record cannot be written.

    Example (conftest.py)::

        def pytest_promotion_finalize(config, decision):
            if decision.promote and not change_window_open():
                return ["outside the change window (Mon-Thu 09:00-16:00)"]
    """


@pytest.hookspec()
def pytest_promotion_add_kinds(config: pytest.Config) -> Mapping[str, CheckKind] | None:
    """Return check kinds to add, ``{name: kind}``: a module or an object with the
    :class:`~pytest_promotion.CheckKind` names (``KEYS``, ``ROLLBACK``, ``run``, ...).
    Asked once, before the config is read, on every process of the run; an installed
    package can use the ``pytest_promotion.kinds`` entry-point group instead.

    Example (conftest.py)::

        import acme_queue_kind

        def pytest_promotion_add_kinds(config):
            return {"queue": acme_queue_kind}
    """
