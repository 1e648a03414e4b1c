"""The prometheus kind's ``over``: a query judged over a window against a real Prometheus."""

from __future__ import annotations

import time

import pytest
import requests

from pytest_promotion.checks import CheckConfigError, Outcome, Target, prometheus
from tests.services.conftest import PrometheusServer

T = Target(env="staging", timeout=5)


@pytest.fixture
def soaked(prometheus_server: PrometheusServer) -> PrometheusServer:
    """The shared Prometheus once it holds at least 4 s of the app's samples."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        end = time.time()
        got = requests.get(
            f"{prometheus_server.url}/api/v1/query_range",
            params={"query": "promotion_test_availability", "start": str(end - 4),
                    "end": str(end), "step": "1"},
            timeout=5,
        ).json()  # fmt: skip
        result = got["data"]["result"]
        if result and len(result[0]["values"]) >= 5:
            return prometheus_server
        time.sleep(0.5)
    pytest.fail("prometheus never held 4 s of samples")


def over(server: PrometheusServer, **spec: object) -> Outcome:
    return prometheus.run({"prometheus": server.url, "step": "1s", **spec}, T)


@pytest.mark.integration
def test_every_sample_within_the_bounds_passes(soaked: PrometheusServer) -> None:
    out = over(soaked, query="promotion_test_availability", min=0.99, over="3s")
    assert out.passed, out.message
    assert out.measured == 0.995
    assert "all 4 samples over 3s within >= 0.99 (worst 0.995)" in out.message


@pytest.mark.integration
def test_a_sample_outside_the_bounds_fails_as_evidence(soaked: PrometheusServer) -> None:
    out = over(soaked, query="promotion_test_availability", max=0.99, over="3s")
    assert not out.passed and out.rollback is None  # the kind's default: a rollback trigger
    assert "= 0.995 at " in out.message and "above the maximum 0.99: 4 of 4 samples" in out.message


@pytest.mark.integration
def test_no_data_over_the_window_fails_without_evidence(soaked: PrometheusServer) -> None:
    out = over(soaked, query="promotion_test_nothing_here", max=1, over="3s")
    assert not out.passed and out.rollback is False
    assert "returned no data over the window; no data is never a pass" in out.message


@pytest.mark.integration
def test_a_hole_in_the_window_fails(soaked: PrometheusServer) -> None:
    # the server has not existed for an hour: the start of the window is a hole
    out = over(soaked, query="promotion_test_availability", max=1, over="1h", step="10s",
               max_gap="1m")  # fmt: skip
    assert not out.passed and out.rollback is False
    assert "(max_gap 60 s) over 1h: a hole in the window is never a pass" in out.message


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"query": "up", "max": 1, "max_gap": "1m"}, "key 'max_gap': expected only with 'over'"),
        ({"targets_up": "app", "over": "1h"}, "key 'over': expected only with 'query'"),
        ({"query": "up", "max": 1, "over": "24h", "step": "1s"}, "more than 11000 points"),
        (
            {"query": "up", "max": 1, "over": "1h", "max_gap": "1s", "step": "10s"},
            "key 'max_gap': expected at least the step (10 s), found 1 s",
        ),
        ({"query": "up", "max": 1, "over": "soon"}, "key 'over': expected a duration like 90m"),
    ],
)
def test_over_mistakes_are_one_line(spec: dict[str, object], error: str) -> None:
    with pytest.raises(CheckConfigError, match=None) as info:
        prometheus.validate({"prometheus": "http://127.0.0.1:9", **spec}, "promotion.toml: x")
    assert error in str(info.value)
