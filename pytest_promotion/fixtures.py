"""Fixtures that point gates at the target environment."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .checks.http_session import BoundSession
    from .config import Environment
    from .gate import GateRecorder
    from .probes import Probe

__all__ = ["gate", "http", "probe", "promotion_env"]


@pytest.fixture
def gate(request: pytest.FixtureRequest) -> GateRecorder:
    """Record what this gate measured: ``gate.measure(57.2, min=60, unit="%")``."""
    from .gate import recorder_for

    return recorder_for(request.node)


@pytest.fixture(scope="session")
def promotion_env(request: pytest.FixtureRequest) -> Environment:
    """The target environment: name, base_url, ca_bundle, services, vars, secrets resolved."""
    from .keys import RUN_KEY

    run = request.config.stash.get(RUN_KEY, None)
    if run is None:
        raise pytest.UsageError(
            "promotion_env needs a target environment: run pytest with --env NAME"
        )
    return run.environment


@pytest.fixture(scope="session")
def http(promotion_env: Environment) -> BoundSession:
    """A requests session bound to the environment: ``http.get("/health")``.

    TLS verified with the environment's ca_bundle, every request bounded by a total
    deadline and a body cap, redirects followed only to the same origin.
    """
    from .checks.http_session import session_for

    return session_for(promotion_env.target())


@pytest.fixture
def probe(request: pytest.FixtureRequest, promotion_env: Environment, gate: GateRecorder) -> Probe:
    """Run any check kind from Python, recorded into this gate.

    ``probe.check("redis", promotion_env.services["redis"])``,
    ``probe.wait_until_healthy("http", "/health", timeout=60)``,
    ``probe.certificate("agent.example.com:443")``, ``probe.prometheus("up")``.
    """
    from .items import prefetch_key
    from .probes import Probe

    prefetch = request.node.stash.get(prefetch_key, None)
    prefetched = {}
    if prefetch is not None:
        for name, (kind, _value, _keys) in prefetch.specs.items():
            prefetched[name] = (kind, functools.partial(prefetch.result, name))
    return Probe(promotion_env, lambda _kind, outcome: gate.record(outcome), prefetched)
