"""The prometheus check kind against a real Prometheus scraping a loopback app."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from pytest_promotion.checks import CheckConfigError, CheckFailed, Target, prometheus
from pytest_promotion.checks.base import Outcome
from pytest_promotion.checks.prometheus_api import parsing
from tests.reports import RunAndParse

from .conftest import PrometheusServer, serve

pytestmark = pytest.mark.integration

T = Target(env="staging", timeout=5)


def check(server: PrometheusServer, **spec: object) -> Outcome:
    return prometheus.run({"prometheus": server.url, **spec}, T)


def test_query_within_min(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, query="promotion_test_availability", min=0.99)
    assert out.passed, out.message
    assert out.message == (
        f"prometheus {prometheus_server.url}: promotion_test_availability = 0.995 (>= 0.99)"
    )
    assert (out.measured, out.threshold) == (0.995, ">= 0.99")


def test_query_above_max(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, query="promotion_test:availability:max", min=0.5, max=0.99)
    assert not out.passed
    assert out.message == (
        f"prometheus {prometheus_server.url}: promotion_test:availability:max = 0.995, "
        "above the maximum 0.99"
    )
    assert (out.measured, out.threshold) == (0.995, ">= 0.5 and <= 0.99")
    assert out.rollback is None  # a measured value out of limits: the kind's default (rollback)


def test_query_below_min(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, query="sum(promotion_test_errors_total)", min=10)
    assert not out.passed
    assert out.message.endswith("sum(promotion_test_errors_total) = 4, below the minimum 10")
    assert out.measured == 4.0


def test_scalar_result(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, query="scalar(promotion_test_availability) * 100", max=100)
    assert out.passed, out.message
    assert out.measured == 99.5


def test_several_series_without_aggregation_fail(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, query="promotion_test_errors_total", max=10)
    assert not out.passed
    assert (
        out.message.endswith(
            "promotion_test_errors_total returned 2 series ("
            'promotion_test_errors_total{code="500",instance="127.0.0.1:'
        )
        or "returned 2 series (" in out.message
    )
    assert out.message.endswith("aggregate them to one value, e.g. sum(...) or max(...)")
    assert (out.measured, out.threshold) == (None, "<= 10")


def test_empty_result_is_no_data(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, query='promotion_test_availability{env="nowhere"}', min=0.9)
    assert not out.passed
    assert out.message == (
        f'prometheus {prometheus_server.url}: promotion_test_availability{{env="nowhere"}} '
        "returned no data (empty vector); no data is never a pass: check the metric name, "
        "labels and time window"
    )
    assert (out.measured, out.threshold) == (None, ">= 0.9")
    assert out.rollback is False  # no data: block, not a rollback trigger


@pytest.mark.parametrize(
    ("query", "says"),
    [("0/0", "returned NaN"), ("vector(0) / vector(0)", "returned NaN"), ("1/0", "returned +Inf")],
)
def test_nan_and_inf_are_no_data(
    prometheus_server: PrometheusServer, query: str, says: str
) -> None:
    out = check(prometheus_server, query=query, max=1)
    assert not out.passed
    assert f": {query} {says} " in out.message
    assert out.message.endswith("no data is never a pass")


def test_api_error_status(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, query="sum(", max=1)
    assert not out.passed
    assert out.message.startswith(
        f"prometheus {prometheus_server.url}: HTTP 400, status 'error': bad_data: "
    )


def test_targets_up(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, targets_up="app")
    assert out.passed, out.message
    assert out.message == f"prometheus {prometheus_server.url}: job 'app': all 1 target up"
    assert (out.measured, out.threshold) == ("1/1", "all up")


def test_targets_down_name_the_instance_and_the_scrape_error(
    prometheus_server: PrometheusServer,
) -> None:
    out = check(prometheus_server, targets_up="gone")
    assert not out.passed
    instance = f"127.0.0.1:{prometheus_server.closed_port}"
    assert out.message.startswith(
        f"prometheus {prometheus_server.url}: job 'gone': 1 of 1 targets down: {instance} ("
    )
    assert "connection refused" in out.message
    assert (out.measured, out.threshold) == ("0/1", "all up")


def test_a_job_without_targets_fails(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, targets_up='no"such\\job')
    assert not out.passed
    assert out.message == (
        f"prometheus {prometheus_server.url}: job 'no\"such\\\\job' has no targets (is the job "
        "name right, and is it scraped by this Prometheus?)"
    )
    assert out.measured == "0/0"


def test_firing_alerts_fail(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, no_firing_alerts=True)
    assert not out.passed
    assert out.message == (
        f"prometheus {prometheus_server.url}: 2 firing alerts: AlwaysFiring (severity=critical), "
        "Watchdog (pending: SlowToFire)"
    )
    assert (out.measured, out.threshold) == (2, "0 firing")


def test_ignored_alerts(prometheus_server: PrometheusServer) -> None:
    out = check(prometheus_server, no_firing_alerts=True, ignore_alerts=["Watchdog"])
    assert not out.passed
    assert out.message.endswith(
        "1 firing alert: AlwaysFiring (severity=critical) (ignored: Watchdog; pending: SlowToFire)"
    )
    ok = check(prometheus_server, no_firing_alerts=True, ignore_alerts=["Watchdog", "AlwaysFiring"])
    assert ok.passed, ok.message
    assert ok.message == (
        f"prometheus {prometheus_server.url}: no firing alerts "
        "(ignored: AlwaysFiring, Watchdog; pending: SlowToFire)"
    )
    assert (ok.measured, ok.threshold) == (0, "0 firing")


def test_query_value_for_python_gates(prometheus_server: PrometheusServer) -> None:
    assert prometheus.query_value(prometheus_server.url, "promotion_test_availability", T) == 0.995
    with pytest.raises(CheckFailed, match="returned no data"):
        prometheus.query_value(prometheus_server.url, "absent_metric_xyz", T)
    with pytest.raises(CheckFailed, match="returned NaN"):
        prometheus.query_value(prometheus_server.url, "0/0", T)


def test_path_joined_to_base_url(prometheus_server: PrometheusServer) -> None:
    target = Target(env="staging", base_url=prometheus_server.url + "/")
    out = prometheus.run({"prometheus": "/", "query": "up{job='app'}", "min": 1}, target)
    assert out.passed, out.message
    lost = prometheus.run({"prometheus": "/", "query": "up", "min": 1}, T)
    assert not lost.passed
    assert lost.message == "'/' is not a full URL and the environment 'staging' has no base_url"


def test_password_in_the_url_is_never_shown(prometheus_server: PrometheusServer) -> None:
    url = prometheus_server.url.replace("http://", "http://gate:s3cret-Pa55@")
    target = Target(env="prod", secrets=("s3cret-Pa55",))
    out = prometheus.run({"prometheus": url, "query": "0/0", "max": 1}, target)
    assert not out.passed
    assert "gate:***@" in out.message and "s3cret-Pa55" not in out.message


def test_server_down_fails_with_connection_refused(prometheus_server: PrometheusServer) -> None:
    url = f"http://127.0.0.1:{prometheus_server.closed_port}"
    out = prometheus.run({"prometheus": url, "targets_up": "app"}, T)
    assert not out.passed
    assert out.message == (
        f"prometheus {url}/api/v1/query: connection refused by 127.0.0.1:{prometheus_server.closed_port}"
    )


def test_body_cap() -> None:
    huge = json.dumps({"status": "success", "data": {"pad": "x" * (2 * 1024 * 1024)}}).encode()
    with serve({"/api/v1/alerts": (200, "application/json", huge)}) as port:
        out = prometheus.run(
            {"prometheus": f"http://127.0.0.1:{port}", "no_firing_alerts": True}, T
        )
    assert not out.passed
    assert (
        out.message
        == f"prometheus http://127.0.0.1:{port}/api/v1/alerts: response body larger than 1 MiB"
    )


def test_not_prometheus() -> None:
    with serve({"/api/v1/alerts": (200, "text/html", b"<html>login</html>")}) as port:
        out = prometheus.run(
            {"prometheus": f"http://127.0.0.1:{port}", "no_firing_alerts": True}, T
        )
    assert not out.passed
    assert out.message.endswith("/api/v1/alerts: HTTP 200, body is not JSON ('<html>login</html>')")


def test_silent_server_is_bounded_by_the_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        out = prometheus.run({"prometheus": url, "query": "up", "min": 1, "timeout": 0.5}, T)
        elapsed = time.monotonic() - start
    assert not out.passed
    assert out.message == f"prometheus {url}/api/v1/query: no response within 0.5 s"
    assert elapsed < 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"prometheus": "prom:9090", "query": "up", "min": 1},
            "key 'prometheus': expected an http(s):// URL or a path starting with '/', "
            "found 'prom:9090'",
        ),
        (
            {"prometheus": "http://p"},
            "key 'prometheus': expected exactly one of query, targets_up, no_firing_alerts, "
            "found none",
        ),
        (
            {"prometheus": "http://p", "query": "up", "targets_up": "app"},
            "key 'prometheus': expected exactly one of query, targets_up, no_firing_alerts, "
            "found query, targets_up",
        ),
        (
            {"prometheus": "http://p", "query": "up"},
            "key 'query': expected 'min' and/or 'max' with it, found neither",
        ),
        (
            {"prometheus": "http://p", "query": "up", "min": 2, "max": 1},
            "key 'min': expected <= max (1), found 2",
        ),
        (
            {"prometheus": "http://p", "targets_up": "app", "max": 1},
            "key 'max': expected only with 'query', found it alone",
        ),
        (
            {"prometheus": "http://p", "no_firing_alerts": False},
            "key 'no_firing_alerts': expected true, found false",
        ),
        (
            {"prometheus": "http://p", "no_firing_alerts": True, "ignore_alerts": ["A", 1]},
            "key 'ignore_alerts': expected a list of alert names, found ['A', 1]",
        ),
    ],
)
def test_validate_names_place_key_expected_and_found(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        prometheus.validate(spec, "promotion.toml: [[environments.prod.checks]] 'slo'")
    assert str(info.value) == f"promotion.toml: [[environments.prod.checks]] 'slo': {message}"


# --- Malformed and partial answers: a loopback stand-in answering fixed JSON per path ------


def _vector(*samples: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": list(samples)}}


def _alerts(*alerts: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"alerts": list(alerts)}}


PARTIAL = "receive series from store 127.0.0.9:10901: rpc error: code = Unavailable"
ANNOTATION = 'PromQL warning: encountered a mix of histograms and floats for metric name "x"'
ANSWERS: dict[str, Any] = {
    "/string-sample/api/v1/query": _vector("garbage"),
    "/short-value/api/v1/query": _vector({"metric": {}, "value": [1]}),
    "/bool-value/api/v1/query": _vector({"metric": {}, "value": [1, True]}),
    "/no-data/api/v1/query": {"status": "success"},
    "/no-type/api/v1/query": {"status": "success", "data": {"result": []}},
    "/bad-scalar/api/v1/query": {"status": "success", "data": {"resultType": "scalar"}},
    "/histogram/api/v1/query": _vector({"metric": {}, "histogram": [1, {"count": "2"}]}),
    "/list-body/api/v1/query": [1, 2],
    "/deep/api/v1/query": "[" * 200_000 + "]" * 200_000,
    "/targets-odd/api/v1/query": _vector({"metric": {"instance": "a"}, "value": [1, "1"]}, 7),
    "/targets-flat/api/v1/query": {"status": "success", "data": []},
    "/alert-strings/api/v1/alerts": _alerts("x"),
    "/alert-shouting/api/v1/alerts": _alerts(
        {"labels": {"alertname": "HighErrorRate"}, "state": "FIRING"},
        {"labels": {"alertname": "Down"}},
    ),
    "/alert-stateless/api/v1/alerts": _alerts({"labels": {"alertname": "Down"}}),
    "/alert-no-labels/api/v1/alerts": _alerts({"state": "firing"}),
    "/alerts-missing/api/v1/alerts": {"status": "success", "data": {}},
    "/partial/api/v1/query": {
        **_vector({"metric": {}, "value": [1, "0.5"]}),
        "warnings": [PARTIAL],
    },
    "/partial/api/v1/alerts": {**_alerts(), "warnings": [ANNOTATION, PARTIAL]},
    "/annotated/api/v1/query": {
        **_vector({"metric": {}, "value": [1, "0.5"]}),
        "warnings": [ANNOTATION],
    },
    "/annotated/api/v1/alerts": {**_alerts(), "warnings": [ANNOTATION]},
    "/bad-warnings/api/v1/alerts": {**_alerts(), "warnings": "oops"},
    # a proxy in front of Prometheus answering 503 with a cached success body
    "/status-503/api/v1/query": _vector({"metric": {}, "value": [1, "0.5"]}),
}


class _Answers(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.bodies.get(self.path.split("?")[0], b'{"status": "error"}')
        self.send_response(503 if self.path.startswith("/status-503/") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def answers() -> Iterator[str]:
    """A loopback stand-in answering ANSWERS whatever the query string (unlike serve())."""
    bodies = {
        p: a.encode() if isinstance(a, str) else json.dumps(a).encode() for p, a in ANSWERS.items()
    }
    handler = type("Handler", (_Answers,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


UP = {"query": "up", "max": 1}
ALERTS = {"no_firing_alerts": True}
NOT_API = "not a Prometheus API answer"


@pytest.mark.parametrize(
    ("path", "mode", "says"),
    [
        ("/string-sample", UP, f"/string-sample: query 'up': {NOT_API} (result[0] is a string)"),
        (
            "/short-value",
            UP,
            f"/short-value: query 'up': {NOT_API} (result[0].value is [1], "
            'expected [time, "value"])',
        ),
        ("/bool-value", UP, "/bool-value: up returned True, not a number"),
        ("/no-data", UP, f"/no-data: query 'up': {NOT_API} (data is missing)"),
        ("/no-type", UP, f"/no-type: query 'up': {NOT_API} (resultType is missing)"),
        (
            "/bad-scalar",
            UP,
            f"/bad-scalar: query 'up': {NOT_API} (result is missing, expected [time, \"value\"])",
        ),
        (
            "/histogram",
            UP,
            "/histogram: query 'up': result[0] is a native histogram, not a number; use "
            "histogram_count(...), histogram_sum(...) or histogram_quantile(...)",
        ),
        ("/list-body", UP, f"/list-body: HTTP 200, {NOT_API} (the body is a list of 2)"),
        ("/deep", UP, "/deep/api/v1/query: HTTP 200, JSON body nested too deeply"),
        (
            "/targets-odd",
            {"targets_up": "a"},
            f"/targets-odd: job 'a': {NOT_API} (result[1] is a number)",
        ),
        (
            "/targets-flat",
            {"targets_up": "a"},
            f"/targets-flat: job 'a': {NOT_API} (data is an empty list)",
        ),
        (
            "/alert-strings",
            ALERTS,
            f"/alert-strings: /api/v1/alerts: {NOT_API} (alerts[0] is a string)",
        ),
        (
            "/alert-shouting",
            ALERTS,
            "/alert-shouting: /api/v1/alerts: alert 'HighErrorRate' has state 'FIRING'; "
            "expected firing, pending or inactive",
        ),
        (
            "/alert-stateless",
            ALERTS,
            "/alert-stateless: /api/v1/alerts: alert 'Down' has no state; "
            "expected firing, pending or inactive",
        ),
        (
            "/alert-no-labels",
            ALERTS,
            f"/alert-no-labels: /api/v1/alerts: {NOT_API} (alerts[0].labels is missing)",
        ),
        (
            "/alerts-missing",
            ALERTS,
            f"/alerts-missing: /api/v1/alerts: {NOT_API} (alerts is missing)",
        ),
        ("/partial", UP, f"/partial: query 'up': partial answer: {PARTIAL}"),
        (
            "/status-503",
            UP,
            "/status-503: HTTP 503 with a success body: not a Prometheus API answer",
        ),
        (
            "/partial",
            ALERTS,
            f"/partial: /api/v1/alerts: partial answer: {PARTIAL} (and 1 more warnings)",
        ),
        (
            "/bad-warnings",
            ALERTS,
            f"/bad-warnings: /api/v1/alerts: {NOT_API} (warnings is a string)",
        ),
    ],
)
def test_malformed_answers_fail_with_one_line(
    answers: str, path: str, mode: dict[str, object], says: str
) -> None:
    out = prometheus.run({"prometheus": answers + path, **mode}, T)  # never raises
    assert not out.passed
    assert out.message == f"prometheus {answers}{says}"
    assert out.rollback is False  # nothing measured: block, not a rollback trigger


def test_promql_warnings_are_shown_not_dropped(answers: str) -> None:
    out = prometheus.run({"prometheus": answers + "/annotated", **UP}, T)
    assert out.passed, out.message
    assert out.message == f"prometheus {answers}/annotated: up = 0.5 (<= 1); {ANNOTATION}"
    assert out.details["warnings"] == [ANNOTATION]
    quiet = prometheus.run({"prometheus": answers + "/annotated", **ALERTS}, T)
    assert quiet.passed, quiet.message
    assert quiet.message == f"prometheus {answers}/annotated: no firing alerts; {ANNOTATION}"


def test_query_value_refuses_a_partial_answer(answers: str) -> None:
    with pytest.raises(CheckFailed) as info:
        prometheus.query_value(answers + "/partial", "up", T)
    assert (
        info.value.message == f"prometheus {answers}/partial: query 'up': partial answer: {PARTIAL}"
    )
    assert info.value.rollback is False


def test_an_unforeseen_shape_is_one_line_not_a_traceback() -> None:
    what = "prometheus http://127.0.0.1:9: query 'up'"
    with pytest.raises(CheckFailed) as info, parsing(what):
        [].pop()  # what a missed shape check would raise while reading the answer
    assert info.value.message == f"{what}: malformed answer: IndexError"
    with pytest.raises(ZeroDivisionError), parsing(what):  # not a shape error: not hidden
        _ = 1 / 0


def test_malformed_answers_end_to_end_block_with_the_line(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, answers: str
) -> None:
    pytester.makefile(".toml", promotion=f"""
[environments.prod]
timeout = 5

[[environments.prod.checks]]
name = "garbage"
prometheus = "{answers}/string-sample"
query = "up"
max = 1

[[environments.prod.checks]]
name = "shouting"
prometheus = "{answers}/alert-shouting"
no_firing_alerts = true
""")  # fmt: skip
    result, report = run_and_parse("--env=prod")
    assert report["decision"] == "block"
    garbage = f"prometheus {answers}/string-sample: query 'up': {NOT_API} (result[0] is a string)"
    shouting = (
        f"prometheus {answers}/alert-shouting: /api/v1/alerts: alert 'HighErrorRate' has state "
        "'FIRING'; expected firing, pending or inactive"
    )
    assert report["reasons"] == [
        f"gate prod::garbage failed: {garbage}",
        f"gate prod::shouting failed: {shouting}",
    ]
    assert {g["id"]: g["message"] for g in report["gates"]} == {
        "prod::garbage": garbage,
        "prod::shouting": shouting,
    }
    out = result.stdout.str()
    assert "Traceback" not in out and "AttributeError" not in out
