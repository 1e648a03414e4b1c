"""Relative criteria in gate runs: baselines built by earlier real runs in a real SQLite
and PostgreSQL ledger, the drift a relative limit alone would let through, no baseline in
each mode, and the config's one-line errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ledger.conftest import fresh_database
from tests.services.conftest import PostgresServer, PrometheusServer

pytestmark = pytest.mark.integration

CONFIG = """
[promotion]
environments = ["dev", "staging", "prod"]
{ledger}

[[environments.staging.checks]]
name = "p95"
prometheus = "{url}"
query = "vector({value})"
max = 125
max_increase = "10%"
baseline_runs = {runs}
on_missing_baseline = "{missing}"
"""


class Releases:
    def __init__(self, pytester: pytest.Pytester, prometheus: PrometheusServer) -> None:
        self.pytester, self.url = pytester, prometheus.url
        self.ledger, self.runs, self.missing = "", 1, "pass"

    def run(self, version: str, value: float) -> tuple[pytest.RunResult, dict[str, Any]]:
        self.pytester.path.joinpath("promotion.toml").write_text(
            CONFIG.format(
                ledger=self.ledger, url=self.url, value=value, runs=self.runs, missing=self.missing
            )
        )
        report = self.pytester.path / f"report-{version}.json"
        result = self.pytester.runpytest("-p", "no:cacheprovider", "--env=staging",
                                         f"--promotion-version={version}",
                                         f"--promotion-report={report}")  # fmt: skip
        gates = json.loads(report.read_text())["gates"]
        return result, next(g for g in gates if g["id"] == "staging::p95")


@pytest.fixture
def releases(pytester: pytest.Pytester, prometheus_server: PrometheusServer) -> Releases:
    return Releases(pytester, prometheus_server)


def test_drift_passes_the_relative_bound_until_the_absolute_one_stops_it(
    releases: Releases,
) -> None:
    first, gate = releases.run("v1", 100)
    assert first.ret == 0
    assert gate["threshold"] == "<= 125; no baseline: pass (on_missing_baseline)"
    values = {"v2": 109, "v3": 118.81, "v4": 129.5}  # +9 % each: within max_increase 10 %
    for version, value in values.items():
        result, gate = releases.run(version, value)
        if version != "v4":
            assert result.ret == 0, gate["message"]
            assert "(baseline " in gate["threshold"] and "+10%) (records " in gate["threshold"]
    assert result.ret != 0
    assert gate["outcome"] == "failed"
    assert "129.5, above the maximum 125" in gate["message"]
    assert "is +9.0% over the baseline" not in gate["message"]  # the relative bound holds
    assert "baseline 118.81 = median of 1 run" in gate["message"]


def test_a_release_over_the_baseline_fails_with_the_records_it_came_from(
    releases: Releases,
) -> None:
    releases.runs = 3
    for version, value in (("v1", 40), ("v2", 44), ("v3", 42)):
        assert releases.run(version, value)[0].ret == 0
    result, gate = releases.run("v4", 80)  # 80 ms passes the 125 budget; +90 % does not
    assert result.ret != 0
    assert "80 is +90.5% over the baseline 42, more than max_increase 10%" in gate["message"]
    assert "baseline 42 = median of 3 runs (" in gate["message"]
    assert gate["threshold"].startswith("<= 125; <= 46.2 (baseline 42 +10%) (records ")
    result.stdout.fnmatch_lines(["*staging::p95*"])


def test_a_rolled_back_release_is_not_a_baseline(releases: Releases) -> None:
    assert releases.run("v1", 100)[0].ret == 0
    assert releases.run("v2", 130)[0].ret != 0  # failed a gate: evidence against v2
    result, gate = releases.run("v3", 108)
    assert result.ret == 0
    assert "<= 110 (baseline 100 +10%)" in gate["threshold"]


@pytest.mark.parametrize(("missing", "code"), [("pass", 0), ("fail", 1)])
def test_no_baseline_in_each_mode(releases: Releases, missing: str, code: int) -> None:
    releases.missing = missing
    result, gate = releases.run("v1", 100)
    assert result.ret == code
    assert gate["threshold"] == f"<= 125; no baseline: {missing} (on_missing_baseline)"
    if missing == "fail":
        why = "no baseline: no earlier good promote measured staging::p95"
        assert f"{why}: on_missing_baseline = fail" in gate["message"]
        result.stdout.fnmatch_lines(["decision: BLOCK*"])


def test_no_baseline_with_the_ledger_off(releases: Releases) -> None:
    releases.ledger, releases.missing = "ledger = false", "fail"
    result, gate = releases.run("v1", 100)
    assert result.ret != 0
    assert "no baseline (the ledger is off (ledger = false))" in gate["message"]


def test_baselines_from_a_postgresql_ledger(
    releases: Releases, postgres_server: PostgresServer
) -> None:
    url = fresh_database(postgres_server, sslrootcert=str(postgres_server.ca))
    releases.ledger = f'ledger = "{url}"'
    assert releases.run("v1", 100)[0].ret == 0
    result, gate = releases.run("v2", 150)
    assert "150, above the maximum 125" in gate["message"]
    result, gate = releases.run("v3", 112)
    assert result.ret != 0
    assert "112 is +12.0% over the baseline 100" in gate["message"]


GATE = """
import os
import pytest

@pytest.mark.staging
def test_latency(gate):
    gate.measure(float(os.environ["LATENCY_MS"]), unit="ms", max=500, max_increase="50%",
                 min_delta=5, baseline_runs=1, on_missing_baseline=os.environ["MISSING"])
"""


def test_gate_measure_compares_with_the_last_good_release(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_gates=GATE)
    pytester.path.joinpath("promotion.toml").write_text(
        '[promotion]\nenvironments = ["dev", "staging", "prod"]\n'
    )

    def run(version: str, latency: float, missing: str = "pass") -> pytest.RunResult:
        monkeypatch.setenv("LATENCY_MS", str(latency))
        monkeypatch.setenv("MISSING", missing)
        return pytester.runpytest("-p", "no:cacheprovider", "--env=staging",
                                  f"--promotion-version={version}")  # fmt: skip

    first = run("v1", 40)
    assert first.ret == 0
    first.stdout.fnmatch_lines(["*40 ms*<= 500 ms; no baseline: pass (on_missing_baseline)*PASS"])
    assert run("v2", 44).ret == 0  # +10 %: within 50 %
    slower = run("v3", 80)  # 80 ms passes the 500 ms budget; +82 % over v2's 44 does not
    assert slower.ret == 1
    slower.stdout.fnmatch_lines([
        "*test_latency: 80 is +81.8% over the baseline 44, more than max_increase 50% (and more "
        "than min_delta 5) (baseline 44 = median of 1 run (*))",
    ])  # fmt: skip
    unstated = run("v4", 45, missing="")  # not stated: a mistake, and a block
    assert unstated.ret == 1
    unstated.stdout.fnmatch_lines(["decision: BLOCK v4 -> staging"])
    unstated.stdout.fnmatch_lines([
        "*gate *test_latency: key 'on_missing_baseline': expected \"pass\" or \"fail\" "
        "beside a relative criterion, found ''",
    ])  # fmt: skip
