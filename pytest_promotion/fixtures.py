"""Fixtures that point gates at the target environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .gate import GateRecorder
from .items import recorder_key

if TYPE_CHECKING:
    from .config import Environment

__all__ = ["gate", "promotion_env"]


@pytest.fixture
def gate(request: pytest.FixtureRequest) -> GateRecorder:
    """Record what this gate measured: ``gate.measure(57.2, min=60, unit="%")``."""
    node = request.node
    recorder = node.stash.get(recorder_key, None)
    if recorder is None:
        recorder = node.stash[recorder_key] = GateRecorder(
            name=node.nodeid, properties=node.user_properties
        )
    return recorder


@pytest.fixture(scope="session")
def promotion_env(request: pytest.FixtureRequest) -> Environment:
    """The target environment: name, base_url, ca_bundle, services, vars, secrets resolved."""
    session = request.config.pluginmanager.get_plugin("promotion-session")
    if session is None:
        raise pytest.UsageError("promotion_env needs a target environment: run pytest with --env NAME")
    environment: Environment = session.environment
    return environment
