"""A fleet check in a gate run: the exit code, the decision, the report line and the
JSON report's per-target outcomes a user sees."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Fleet

pytestmark = pytest.mark.integration


def config(fleet: Fleet, check: str) -> str:
    return f"""
[environments.prod]
timeout = 6
ca_bundle = "{fleet.ca_file}"
rollback = "undo {{env}}"

[[environments.prod.checks]]
name = "agents"
{check}
"""


def test_failed_quorum_rolls_back_and_reports_every_target(
    pytester: pytest.Pytester, read_report: Callable[..., Any], fleet: Fleet
) -> None:
    inventory = fleet.targets("ok")[:30] + fleet.targets("refused")[:2] + fleet.targets("hang")[:1]
    pytester.path.joinpath("agents.json").write_text(json.dumps(inventory))
    pytester.makefile(
        ".toml",
        promotion=config(
            fleet, 'http = "/health"\ntargets_file = "agents.json"\nmin_healthy = "95%"'
        ),
    )
    result = pytester.runpytest("--env=prod", "--promotion-report=decision.json")
    assert result.ret == 1
    report = read_report()
    assert report["decision"] == "rollback"
    assert report["rollback_command"] == "undo prod"
    (gate,) = report["gates"]
    assert gate["measured"] == "30 of 33 healthy"
    assert gate["message"].startswith("30 of 33 healthy (need 32 = 95%); unhealthy: 127.0.0.")
    assert len(gate["targets"]) == 33
    assert sum(1 for t in gate["targets"] if t["healthy"]) == 30
    result.stdout.fnmatch_lines(["*prod::agents: 30 of 33 healthy (need 32 = 95%); unhealthy:*"])


def test_passing_quorum_promotes(
    pytester: pytest.Pytester, read_report: Callable[..., Any], fleet: Fleet
) -> None:
    targets = json.dumps(fleet.targets("ok")[:40] + fleet.targets("refused")[:1])
    pytester.makefile(
        ".toml",
        promotion=config(
            fleet, f'tls = "*"\nserver_name = "fleet.test"\ntargets = {targets}\nmin_healthy = 40'
        ),
    )
    result = pytester.runpytest("--env=prod", "--promotion-report=decision.json")
    assert result.ret == 0
    report = read_report()
    assert report["decision"] == "promote"
    assert report["gates"][0]["measured"] == "40 of 41 healthy"


def test_a_discovery_that_fails_blocks_and_never_rolls_back(
    pytester: pytest.Pytester, read_report: Callable[..., Any], fleet: Fleet
) -> None:
    pytester.makefile(
        ".toml",
        promotion=config(fleet, 'tcp = ":443"\ntargets_command = ["false"]'),
    )
    result = pytester.runpytest("--env=prod", "--promotion-report=decision.json")
    assert result.ret == 1
    report = read_report()
    assert report["decision"] == "block"
    assert report["gates"][0]["message"] == (
        "fleet not seen, nothing was probed: targets_command false exited with 1"
    )


def test_variables_in_targets_are_resolved(
    pytester: pytest.Pytester,
    read_report: Callable[..., Any],
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = fleet.targets("ok")[:2]
    monkeypatch.setenv("AGENT_A", first)
    pytester.makefile(
        ".toml",
        promotion=config(
            fleet,
            f'tcp = "*"\ntargets = ["${{AGENT_A}}", {{ target = "{second}", labels = {{ env = "{{env}}" }} }}]',
        ),
    )
    result = pytester.runpytest("--env=prod", "--promotion-report=decision.json")
    assert result.ret == 0
    gate = read_report()["gates"][0]
    # a ${VAR} value is a secret like any other: masked wherever it shows
    assert [t["target"] for t in gate["targets"]] == ["***", second]
    assert gate["targets"][1]["labels"] == {"env": "prod"}
