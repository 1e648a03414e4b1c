"""The demo's gate suite, written to a directory of its own: what ``promotion demo``
runs, from an installed package, without this repository.

Each fault of the demo target ends in one decision (``EXPECTED``), the one the README
and docs/tutorial.md show."""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXPECTED", "PROMOTION_TOML", "TEST_GATES", "write_suite"]

# fault (None = healthy) -> (decision, the gate that decides it)
EXPECTED: dict[str | None, tuple[str, str]] = {
    None: ("PROMOTE", ""),
    "unhealthy": ("ROLLBACK", "dev::health"),
    "500": ("ROLLBACK", "dev::health"),
    "slow": ("ROLLBACK", "dev::health"),
    "expiring": ("BLOCK", "dev::certificate"),
    "version": ("ROLLBACK", "deployed-version"),
}

PROMOTION_TOML = """\
# The demo's promotion config: one environment, dev, whose target is the embedded demo
# service (PROMOTION_DEMO_URL and PROMOTION_DEMO_CA are set by `promotion demo`).
[promotion]
environments = ["dev", "staging", "prod"]

[environments.dev]
base_url  = "${PROMOTION_DEMO_URL}"
ca_bundle = "${PROMOTION_DEMO_CA}"     # TLS verified against the demo's own CA
timeout   = 5
rollback  = "gh workflow run environment-promotion.yml --field rollback=true --field environment={env}"

# The service answers /health with {"status": "ok"} within 500 ms: a failure is a
# rollback trigger (the release is live and broken).
[[checks]]
name = "health"
from = "dev"
http = "/health"
expect_status = 200
expect_json = { status = "ok" }
max_latency_ms = 500
trigger = "rollback"
wait = { timeout = 3, interval = 0.5 }

# Its certificate is valid for 14 more days: a failure blocks (renew, then promote).
[[checks]]
name = "certificate"
from = "dev"
tls = "${PROMOTION_DEMO_HOSTPORT}"
min_days_valid = 14
trigger = "block"
"""

TEST_GATES = '''\
"""A gate written in Python: the deployed service reports the version being promoted."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.dev


@pytest.mark.gate(name="deployed-version", trigger="rollback")
def test_deployed_version(http, gate) -> None:
    expected = os.environ["PROMOTION_VERSION"]
    version = http.get("/health").json()["version"]
    gate.measure(version, threshold=f"== {expected}")
    assert version == expected
'''


def write_suite(directory: Path) -> Path:
    """promotion.toml and gates/test_demo.py under ``directory``; returns gates/."""
    (directory / "promotion.toml").write_text(PROMOTION_TOML)
    gates = directory / "gates"
    gates.mkdir(exist_ok=True)
    (gates / "test_demo.py").write_text(TEST_GATES)
    return gates
