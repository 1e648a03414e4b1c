"""The service kinds as users run them: promotion.toml, `pytest --env=staging`, reports.

${VAR} secrets come from a dotenv file; they must appear in no output, report or JUnit file.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from pytest_promotion.checks import Target, grafana, postgres, prometheus, redis_check
from tests.reports import RunAndParse
from tests.support import free_port

from .conftest import PostgresServer, PrometheusServer, RedisServer

pytestmark = pytest.mark.integration


def test_healthy_services_promote(
    pytester: pytest.Pytester,
    run_and_parse: RunAndParse,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    prometheus_server: PrometheusServer,
) -> None:
    pytester.makefile(
        ".staging",
        env=f"REDIS_PASSWORD={redis_server.password}\nPG_PASSWORD={postgres_server.password}\n",
    )
    Path(pytester.path, "env.staging").rename(pytester.path / ".env.staging")
    pytester.makefile(
        ".toml",
        promotion=f"""
[environments.staging]
dotenv = ".env.staging"
timeout = 5
rollback = "undo {{env}}"
prometheus = "{prometheus_server.url}"
ca_bundle = "{postgres_server.ca}"  # the private CA of the PostgreSQL server's certificate

[[environments.staging.checks]]
name = "cache"
redis = "redis://:${{REDIS_PASSWORD}}@127.0.0.1:{redis_server.port}/0"
expect_role = "master"

[[environments.staging.checks]]
name = "db"
postgres = "postgresql://postgres:${{PG_PASSWORD}}@127.0.0.1:{postgres_server.port}/postgres"
expect_read_write = true
max_replication_lag_s = 10

[[environments.staging.checks]]
name = "availability"
prometheus = "{{prometheus}}"
query = "promotion_test_availability"
min = 0.99

[[environments.staging.checks]]
name = "app-up"
prometheus = "{{prometheus}}"
targets_up = "app"

[[environments.staging.checks]]
name = "alerts"
prometheus = "{{prometheus}}"
no_firing_alerts = true
ignore_alerts = ["Watchdog", "AlwaysFiring"]
""",
    )
    result, report = run_and_parse("--env=staging", "--junitxml=gate.xml", "-v")
    assert result.ret == 0, result.stdout.str()
    assert report["decision"] == "promote"
    gates = {g["id"]: g for g in report["gates"]}
    assert {g["outcome"] for g in gates.values()} == {"passed"}
    assert set(gates) == {
        f"staging::{n}" for n in ("cache", "db", "availability", "app-up", "alerts")
    }
    assert gates["staging::availability"]["threshold"] == ">= 0.99"
    for text in (result.stdout.str(), (pytester.path / "decision.json").read_text(),
                 (pytester.path / "gate.xml").read_text()):  # fmt: skip
        assert redis_server.password not in text
        assert postgres_server.password not in text


def test_down_service_rolls_back_and_no_data_blocks(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, prometheus_server: PrometheusServer
) -> None:
    pytester.makefile(".toml", promotion=f"""
[environments.prod]
timeout = 2
rollback = "undo {{env}}"

[[environments.prod.checks]]
name = "cache"
redis = "redis://:stopped-Pa55@127.0.0.1:{free_port()}/0"
""")  # fmt: skip
    _, report = run_and_parse("--env=prod")
    assert report["decision"] == "rollback"
    (gate,) = report["gates"]
    assert ": connection refused by 127.0.0.1:" in gate["message"]
    assert "stopped-Pa55" not in gate["message"]
    assert report["rollback_command"] == "undo prod"

    pytester.makefile(".toml", promotion=f"""
[environments.prod]
rollback = "undo {{env}}"

[[environments.prod.checks]]
name = "error-ratio"
prometheus = "{prometheus_server.url}"
query = "0/0"
max = 0.05
""")  # fmt: skip
    _, report = run_and_parse("--env=prod")
    assert report["decision"] == "block"  # no data: cannot vouch, but no evidence to roll back
    (gate,) = report["gates"]
    assert gate["outcome"] == "failed"
    assert "returned NaN" in gate["message"]


def test_unknown_key_is_a_config_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion='[[environments.dev.checks]]\nname = "c"\nredis = "redis://x"\nrole = "master"\n',
    )
    result = pytester.runpytest_subprocess("--env=dev")
    assert result.ret != 0
    out = result.stdout.str() + result.stderr.str()
    assert "unknown key 'role' for a redis check" in out


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (redis_check, "${REDIS_URL}"),
        (postgres, "${DATABASE_URL}"),
        (prometheus, "{prometheus}"),
        (grafana, "{grafana}"),
    ],
)
def test_templates_are_validated_after_substitution(kind: ModuleType, value: str) -> None:
    name = kind.__name__.rsplit(".", 1)[1].replace("_check", "")
    spec = {name: value, "targets_up": "app"} if name == "prometheus" else {name: value}
    kind.validate(spec, "promotion.toml: [[checks]] 'x'")  # no error: checked at run time


def test_a_substituted_value_of_the_wrong_shape_fails_at_run() -> None:
    target = Target(env="dev", timeout=1)
    out = redis_check.run({"redis": "http://cache:6379"}, target)
    assert not out.passed and out.message.startswith("redis http://cache:6379: ")
    out = prometheus.run({"prometheus": "prom:9090", "targets_up": "app"}, target)
    assert out.message == "'prom:9090' is not a full URL and the environment 'dev' has no base_url"
