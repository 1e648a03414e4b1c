"""Health gates written in Python, against the environment's base_url."""

from __future__ import annotations

import pytest

import pytest_promotion

pytestmark = pytest.mark.dev


@pytest.mark.gate(name="deployed-version", trigger="rollback")
def test_deployed_version_is_the_promoted_one(http, gate) -> None:
    """The service answers with the version being promoted, not a stale one."""
    version = http.get("/health").json()["version"]
    gate.measure(version, threshold=f"== {pytest_promotion.__version__}")
    assert version == pytest_promotion.__version__
