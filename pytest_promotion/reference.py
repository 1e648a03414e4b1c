"""docs/config-reference.md, generated from the validator's own schema: the tables of
schema.py (PROMOTION_KEYS, ENV_KEYS, CHECK_COMMON, SHARED_KEYS) and each check kind's
KEYS. A key the schema has is listed even when it has no note here ("-"); a test fails
when the file and the schema differ (`make config-reference` rewrites it).

    python -m pytest_promotion.reference > docs/config-reference.md
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from .checks import KINDS, kind_module
from .schema import CHECK_COMMON, ENV_KEYS, PROMOTION_KEYS, SHARED_KEYS

__all__ = ["NOTES", "render"]

# key (or "kind.key") -> (default, example, what it means)
NOTES: dict[str, tuple[str, str, str]] = {
    "environments": ('["dev", "staging", "prod"]', '["dev", "qa", "prod"]', "the chain, in order"),
    "concurrency": ("64", "16", "declarative checks probed at once"),
    "base_url": (
        "-",
        '"https://staging.example.com"',
        "the deployed service; relative `http` paths join it",
    ),
    "ca_bundle": ("the system store", '"certs/ca.pem"', "CA file TLS is verified against"),
    "insecure": ("false", "true", "turn TLS verification off (reported in every output)"),
    "dotenv": (
        "-",
        '".env.staging"',
        "file ${VAR} values are read from (the process environment wins)",
    ),
    "timeout": ("5", "10", "seconds per probe (a check's own `timeout` wins)"),
    "rollback": (
        "-",
        '"gh workflow run deploy.yml --field env={env}"',
        "rollback command: argv or a string split like a shell would, never run by one",
    ),
    "rollback_timeout": ("600", "300", "seconds for --promotion-rollback=execute"),
    "allow_waivers": (
        "true (false for the last environment)",
        "false",
        "whether --waive is accepted",
    ),
    "allow_skips": (
        "true (false for the last environment)",
        "false",
        "whether a skipped gate may promote",
    ),
    "hosts": ("[]", '["ssh://deploy@web1"]', "testinfra hosts for the `host` fixture"),
    "redis": ("-", '"redis://:${REDIS_PASSWORD}@redis:6379/0"', "URL for {redis} and redis checks"),
    "postgres": ("-", '"postgresql://app@db/app"', "URL for {postgres} and postgres checks"),
    "prometheus": ("-", '"http://prometheus:9090"', "URL for {prometheus}"),
    "grafana": ("-", '"http://grafana:3000"', "URL for {grafana}"),
    "vars": ("{}", '{ region = "eu-west-1" }', "free values for Python gates (promotion_env.vars)"),
    "checks": ("[]", "[[environments.dev.checks]]", "this environment's own declarative checks"),
    "launch": (
        "-",
        '["docker", "compose", "up", "-d", "--wait"]',
        "start the target before the gates (launch.py)",
    ),
    "ready": (
        "-",
        '["curl", "-fsS", "http://127.0.0.1:8080/health"]',
        "polled until it exits 0: the target is ready",
    ),
    "ready_timeout": ("60", "120", "seconds for `launch` to get ready, else the run blocks"),
    "teardown": (
        "-",
        '["docker", "compose", "down"]',
        "run after the gates, whatever the decision",
    ),
    "name": ("the kind", '"api-health"', "gate name: id ENV::NAME, and for --waive"),
    "trigger": (
        "the kind's (rollback for live probes)",
        '"block"',
        '"rollback" or "block" when it fails',
    ),
    "wait": ("-", "{ timeout = 60, interval = 2 }", "retry until it passes or the time is up"),
    "consecutive_successes": ("1", "3", "passes in a row needed while waiting"),
    "description": ("-", '"the public API"', "shown in reports"),
    "from": ("the first environment", '"staging"', "this and every later environment"),
    "http.http": ("-", '"/health"', "URL or path under base_url"),
    "http.expect_status": ("2xx", "200", "status (or list of statuses) expected"),
    "http.expect_json": (
        "-",
        '{ status = "ok" }',
        "keys the JSON body must have, with these values",
    ),
    "http.max_latency_ms": ("-", "500", "slowest acceptable answer"),
    "tls.tls": ("-", '"api.example.com:443"', "host:port to handshake with"),
    "tls.min_days_valid": ("-", "14", "days the certificate must still be valid"),
    "tcp.tcp": ("-", '"db:5432"', "host:port that must accept a connection"),
    "coverage.coverage": (
        "-",
        '"build/coverage.xml"',
        "coverage report (Cobertura XML, JSON, LCOV, Go)",
    ),
    "coverage.min": ("-", "60", "percent"),
    "bandit.bandit": ("-", '["src"]', "paths bandit scans"),
    "bandit.sarif": ("-", '"build/scan.sarif"', "a SARIF scanner's report instead of bandit"),
    "bandit.max_high": ("5", "0", "high findings allowed"),
    "bandit.max_critical": ("0", "0", "critical findings allowed"),
    "command.command": (
        "-",
        '["ruff", "check", "."]',
        "argv (or a string split like a shell would)",
    ),
    "command.expect_exit": ("0", "0", "exit code expected"),
    "command.expect_empty_output": ("false", "true", "any output is a failure (gofmt -l)"),
    "command.junit": (
        "-",
        '"build/junit.xml"',
        "JUnit file the command writes: its counts are the measure",
    ),
    "benchmark.benchmark": (
        "-",
        '"build/benchmarks"',
        "pytest-benchmark or go test -bench results",
    ),
    "benchmark.baseline": ("-", '"bench/baseline.json"', "what the results are compared with"),
    "benchmark.max_regression": ("-", "0.5", "a median this much slower is a regression"),
}

_TYPE_NAMES = {"str": "string", "list[str]": "list of strings", "argv": "string or list of strings",
               "table": "table", "list": "list of tables", "number": "number", "int": "integer",
               "bool": "boolean"}  # fmt: skip
_PY_NAMES = {"str": "string", "list": "list", "dict": "table", "int": "integer",
             "float": "number", "bool": "boolean"}  # fmt: skip


def _type(kind: object) -> str:
    if isinstance(kind, str):
        return _TYPE_NAMES.get(kind, kind)
    types = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_PY_NAMES.get(t.__name__, t.__name__) for t in types)


def _table(keys: Mapping[str, object], prefix: str = "") -> list[str]:
    lines = ["| key | type | default | example | meaning |", "|---|---|---|---|---|"]
    for key, kind in keys.items():
        default, example, note = NOTES.get(prefix + key, NOTES.get(key, ("-", "-", "-")))
        cells = [f"`{key}`", _type(kind), default, f"`{example}`" if example != "-" else "-", note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- GENERATED by `python -m pytest_promotion.reference` (make config-reference) from",
        "     the validator's schema: edit pytest_promotion/reference.py, not this file. -->",
        "",
        "Every key `promotion.toml` (or `[tool.promotion]` in pyproject.toml) accepts, with the",
        "type the validator checks. A key not listed is an error (exit 4, one line naming it).",
        "`${VAR}` and `${VAR:-default}` resolve from the environment's `dotenv` file and the",
        "process environment, for the target environment only.",
        "",
        "## `[promotion]`",
        "",
        *_table(PROMOTION_KEYS),
        "",
        "## `[environments.NAME]`",
        "",
        *_table(ENV_KEYS),
        "",
        "## Every check (`[[checks]]`, `[[environments.NAME.checks]]`)",
        "",
        "Exactly one kind key per check; these keys go with any kind.",
        "",
        *_table(CHECK_COMMON),
        "",
        "Only in the shared `[[checks]]` (default: every environment):",
        "",
        *_table(SHARED_KEYS),
    ]
    seen: set[str] = set()
    for kind, module_name in KINDS.items():
        module = kind_module(kind)
        if module_name in seen:
            continue
        seen.add(module_name)
        kinds = [k for k, m in KINDS.items() if m == module_name]
        trigger = "rollback" if getattr(module, "ROLLBACK", False) else "block"
        out += [
            "",
            f"## Kind {' / '.join(f'`{k}`' for k in kinds)}",
            "",
            f"A failure is a {trigger} trigger unless `trigger` says otherwise.",
            "",
            *_table(module.KEYS, prefix=f"{kind}."),
        ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
