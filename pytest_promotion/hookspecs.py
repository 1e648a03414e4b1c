"""Hooks a conftest or plugin can implement to take part in a promotion run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .config import Environment
    from .decision import Decision


@pytest.hookspec(firstresult=True)
def pytest_promotion_rollback_command(
    config: pytest.Config, environment: Environment, decision: Decision
) -> list[str] | str | None:
    """Return the rollback command as an argv list (or a string, split like the configured
    template with shlex, never run through a shell) instead of the configured template.
    Anything else is reported as a warning naming this hook, and there is no command.

    Example (conftest.py)::

        def pytest_promotion_rollback_command(config, environment, decision):
            return ["helm", "rollback", "agent", "--namespace", environment.name]
    """


@pytest.hookspec()
def pytest_promotion_decision(config: pytest.Config, decision: Decision) -> None:
    """Called once, on the controller, with the final decision (for notifications).

    Example (conftest.py)::

        def pytest_promotion_decision(config, decision):
            if decision.decision != "promote":
                notify_chat(f"{decision.environment}: {decision.decision}")
    """
