"""targets_prometheus against a real Prometheus (the session's, from conftest.py): the
job's targets from its ``up`` series, up or down, with their labels."""

from __future__ import annotations

import pytest

from pytest_promotion.checks import tcp
from pytest_promotion.checks.base import Outcome, Target

from .conftest import PrometheusServer

pytestmark = pytest.mark.integration

TARGET = Target(env="prod", timeout=1.0)


def check(prometheus: PrometheusServer, job: str) -> Outcome:
    spec = {"tcp": "*", "targets_prometheus": {"url": prometheus.url, "job": job}}
    tcp.validate(spec, "test")
    return tcp.run(spec, TARGET)


def test_the_jobs_targets_with_their_labels(
    prometheus_server: PrometheusServer, metrics_port: int
) -> None:
    out = check(prometheus_server, "app")
    assert out.passed, out.message
    assert out.measured == "1 of 1 healthy"
    (one,) = out.details["targets"]
    assert one["target"] == f"127.0.0.1:{metrics_port}"
    assert one["labels"] == {"instance": f"127.0.0.1:{metrics_port}", "job": "app"}
    assert out.details["source"] == "Prometheus job app"


def test_a_target_prometheus_sees_down_is_still_in_the_fleet(
    prometheus_server: PrometheusServer,
) -> None:
    out = check(prometheus_server, "gone")
    closed = f"127.0.0.1:{prometheus_server.closed_port}"
    assert not out.passed
    assert out.message == (
        f"0 of 1 healthy (need 1 = 100%); unhealthy: {closed} refused: "
        f"connection refused by {closed}"
    )


def test_an_unknown_job_blocks(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, "nope")
    assert (out.passed, out.rollback) == (False, False)
    assert out.message == (
        "fleet not seen, nothing was probed: Prometheus job nope listed no targets"
    )


def test_prometheus_unreachable_blocks(prometheus_server: PrometheusServer) -> None:
    url = f"http://127.0.0.1:{prometheus_server.closed_port}"
    spec = {"tcp": "*", "targets_prometheus": {"url": url, "job": "app"}}
    out = tcp.run(spec, TARGET)
    assert (out.passed, out.rollback) == (False, False)
    assert out.message == (
        f"fleet not seen, nothing was probed: Prometheus {url}/api/v1/query: "
        f"connection refused by 127.0.0.1:{prometheus_server.closed_port}"
    )
