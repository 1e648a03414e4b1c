"""Fleet checks against a real loopback fleet: the quorum, the per-label limit, every
discovery source (inline, file, command, DNS), server_name for IP targets, the
concurrency cap, and a discovery that fails (a block, never a rollback)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_promotion.checks import fleet, http, tcp, tls
from pytest_promotion.checks.aio_net import Result
from pytest_promotion.checks.base import CheckConfigError, Outcome, Target
from pytest_promotion.checks.runner import run_check
from pytest_promotion.config import CheckSpec

from .conftest import Dns, Fleet

pytestmark = pytest.mark.integration


def target(fleet: Fleet, tmp_path: Path | None = None, **kw: Any) -> Target:
    kw.setdefault("timeout", 1.0)
    return Target(env="prod", ca_bundle=str(fleet.ca_file), rootdir=tmp_path or Path.cwd(), **kw)


def http_fleet(fleet: Fleet, tmp_path: Path | None = None, **spec: Any) -> Outcome:
    spec = {"http": "/health", **spec}
    http.validate(spec, "test")
    return http.run(spec, target(fleet, tmp_path, timeout=spec.get("timeout", SLOW)))


# what a healthy target gets to answer on a loaded 2-core machine (the fleet's 300
# handshakes share it with the other tests under xdist); the hanging ones cost this much
SLOW = 6.0
ALL = ("ok", "refused", "hang", "slow_body", "wrong_cert", "status_503")


def test_quorum_passes_with_enough_healthy_targets(fleet: Fleet) -> None:
    out = http_fleet(
        fleet, targets=fleet.urls(*ALL), min_healthy="75%", expect_json={"status": "ok"}
    )
    assert out.passed, (out.details["unhealthy_by_reason"], out.message)
    assert out.measured == "240 of 300 healthy"
    assert out.message.startswith("240 of 300 healthy (need 225 = 75%); unhealthy: ")
    assert out.details["unhealthy_by_reason"] == {
        "refused": 12,
        "timeout": 24,
        "TLS": 12,
        "status": 12,
    }
    assert len(out.details["targets"]) == 300  # every target's outcome, for the report


def test_failed_quorum_is_a_rollback_trigger_naming_the_worst(fleet: Fleet) -> None:
    spec = {"http": "/health", "targets": fleet.urls(*ALL), "min_healthy": "95%"}
    check = CheckSpec(name="agents", kind="http", env="prod", spec=spec, where="test")
    out = run_check(check, target(fleet, timeout=SLOW))
    assert not out.passed and out.rollback is True
    assert out.message.startswith("240 of 300 healthy (need 285 = 95%); unhealthy: ")
    assert out.message.endswith("; and 40 more")
    shown = out.message.split("; unhealthy: ")[1].split("; ")[:-1]
    assert len(shown) == 20
    refused = fleet.targets("refused")[0]
    assert f"https://{refused} refused: connection refused by {refused}" in shown
    by_target = {t["target"]: t for t in out.details["targets"]}
    hung = by_target[fleet.urls("hang")[0]]
    assert (hung["reason"], hung["message"]) == ("timeout", f"no response within {SLOW:g} s")
    slow = by_target[fleet.urls("slow_body")[0]]
    assert slow["message"] == f"response body not complete within {SLOW:g} s"
    wrong = by_target[fleet.urls("wrong_cert")[0]]
    assert wrong["reason"] == "TLS" and "unknown CA" in wrong["message"]
    assert by_target[fleet.urls("status_503")[0]]["message"] == "expected 2xx, got 503"


def test_a_count_and_a_per_label_limit(fleet: Fleet, tmp_path: Path) -> None:
    inventory = [{"target": u, "labels": {"zone": "a"}} for u in fleet.urls("ok")[:20]]
    inventory += [{"target": u, "labels": {"zone": "b"}} for u in fleet.urls("refused")[:2]]
    inventory += [{"target": u, "labels": {"zone": "c"}} for u in fleet.urls("hang")[:1]]
    (tmp_path / "agents.json").write_text(json.dumps(inventory))
    common = {
        "targets_file": "agents.json",
        "min_healthy": 20,
        "timeout": 3.0,
    }  # 20 handshakes at once: room on a busy machine
    assert http_fleet(fleet, tmp_path, **common).passed
    out = http_fleet(fleet, tmp_path, **common, max_unhealthy_per_label={"zone": 1})
    assert not out.passed
    assert out.message.startswith("20 of 23 healthy (need 20); zone=b: 2 unhealthy (max 1); ")
    assert out.details["targets"][-1]["labels"] == {"zone": "c"}


def test_inventory_file_one_per_line_with_comments(fleet: Fleet, tmp_path: Path) -> None:
    lines = ["# the agents", *fleet.targets("ok")[:5], "", f"{fleet.targets('ok')[5]}  # last"]
    (tmp_path / "agents.txt").write_text("\n".join(lines) + "\n")
    out = tls.run(
        {"tls": "*", "targets_file": "agents.txt", "server_name": "fleet.test"},
        target(fleet, tmp_path),
    )
    assert out.passed, out.message
    assert out.measured == "6 of 6 healthy"


def test_ip_target_is_verified_against_server_name_or_its_address(fleet: Fleet) -> None:
    urls = fleet.urls("ok")[:3]
    assert http_fleet(fleet, targets=urls).passed  # the certificate names 127.0.0.1-8
    assert http_fleet(fleet, targets=urls, server_name="fleet.test").passed
    out = http_fleet(fleet, targets=urls, server_name="other.test")
    assert not out.passed
    first = out.details["targets"][0]
    assert first["reason"] == "TLS"
    assert first["message"] == "certificate does not match hostname other.test"


def test_credentials_in_targets_never_reach_the_report(fleet: Fleet) -> None:
    refused = fleet.targets("refused")[0]
    out = http.run(
        {"http": "/health?token=abc123", "targets": [f"https://agent:hunter2@{refused}"]},
        Target(env="prod", timeout=1.0, secrets=("abc123",)),
    )
    assert not out.passed
    shown = json.dumps(out.details["targets"]) + out.message
    assert "hunter2" not in shown and "abc123" not in shown
    assert f"https://agent:***@{refused}" in out.message


def test_targets_command_prints_json(fleet: Fleet) -> None:
    listing = json.dumps(fleet.targets("ok")[:4] + fleet.targets("refused")[:1])
    out = tcp.run(
        {"tcp": "*", "targets_command": [sys.executable, "-c", f"print({listing!r})"]},
        target(fleet),
    )
    assert not out.passed
    assert out.message.startswith("4 of 5 healthy (need 5 = 100%); unhealthy: ")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"targets_command": [sys.executable, "-c", "import sys; sys.exit('no cluster')"]},
            "fleet not seen, nothing was probed: targets_command "
            f"{sys.executable} exited with 1: no cluster",
        ),
        (
            {"targets_command": [sys.executable, "-c", "print('')"]},
            "fleet not seen, nothing was probed: targets_command listed no targets",
        ),
        (
            {"targets_file": "missing.txt"},
            "fleet not seen, nothing was probed: targets_file {tmp}/missing.txt: "
            "No such file or directory",
        ),
    ],
)
def test_failed_or_empty_discovery_blocks(
    fleet: Fleet, tmp_path: Path, source: dict[str, Any], expected: str
) -> None:
    spec = {"tcp": "*", **source}
    tcp.validate(spec, "test")
    check = CheckSpec(
        name="agents", kind="tcp", env="prod", spec=spec, where="t", trigger="rollback"
    )
    out = run_check(check, target(fleet, tmp_path))
    assert not out.passed
    assert out.rollback is False  # the fleet was not seen: block, even with trigger = rollback
    assert out.message == expected.format(tmp=tmp_path)


def test_dns_a_records_through_a_given_resolver(
    dns_server: Dns, same_port_listeners: tuple[int, list[socket.socket]]
) -> None:
    port, _ = same_port_listeners
    dns_server.records["web.fleet.test"] = [("A", f"127.0.0.{i}") for i in range(1, 5)]
    spec = {"tcp": "*", "targets_dns": f"web.fleet.test:{port}", "resolver": dns_server.resolver}
    tcp.validate(spec, "test")
    out = tcp.run(spec, Target(env="prod", timeout=1.0))
    assert out.passed, out.message
    assert [t["target"] for t in out.details["targets"]] == [
        f"127.0.0.{i}:{port}" for i in range(1, 5)
    ]
    assert out.details["source"] == f"DNS web.fleet.test:{port}"


def test_dns_srv_records(
    dns_server: Dns, same_port_listeners: tuple[int, list[socket.socket]]
) -> None:
    port, _ = same_port_listeners
    dns_server.records["_agent._tcp.fleet.test"] = [
        ("SRV", f"10 5 {port} a.fleet.test."),
        ("SRV", f"10 5 {port} b.fleet.test."),
    ]
    dns_server.records["a.fleet.test"] = [("A", "127.0.0.2")]
    dns_server.records["b.fleet.test"] = [("A", "127.0.0.3")]
    spec = {"tcp": "*", "targets_dns": "_agent._tcp.fleet.test", "resolver": dns_server.resolver}
    out = tcp.run(spec, Target(env="prod", timeout=1.0))
    assert out.passed, out.message
    assert out.measured == "2 of 2 healthy"
    assert {t["labels"]["dns_name"] for t in out.details["targets"]} == {
        "a.fleet.test",
        "b.fleet.test",
    }


def test_dns_name_without_records_blocks(dns_server: Dns) -> None:
    spec = {"tcp": "*", "targets_dns": "gone.fleet.test:80", "resolver": dns_server.resolver}
    out = tcp.run(spec, Target(env="prod", timeout=1.0))
    assert (out.passed, out.rollback) == (False, False)
    assert out.message == (
        "fleet not seen, nothing was probed: DNS gone.fleet.test:80 listed no targets"
    )


def test_concurrency_caps_the_probes_in_flight_and_the_rest_wait_in_order() -> None:
    started: list[str] = []
    in_flight, most = 0, 0

    async def probe(member: str) -> Result:
        nonlocal in_flight, most
        started.append(member)
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return Result(member, True, "ok", "fine")

    members = [f"127.0.0.1:{1000 + i}" for i in range(50)]
    results = asyncio.run(fleet.bounded(probe, members, 3))
    assert most == 3
    assert started == members
    assert [r.target for r in results] == members


def test_the_configured_concurrency_reaches_the_engine() -> None:
    fleet.configure(7)
    try:
        out = tcp.run({"tcp": ":1", "targets": ["127.0.0.1"]}, Target(env="prod", timeout=1))
    finally:
        fleet.configure(64)
    assert out.details["concurrency"] == 7
    out = tcp.run({"tcp": ":1", "targets": ["127.0.0.1"]}, Target(env="prod", timeout=1))
    assert out.details["concurrency"] == 1024  # the threaded default means "not set"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"tcp": "*", "targets": ["a:1"], "targets_file": "x"},
            "t: expected exactly one of targets, targets_file, targets_dns, "
            "targets_prometheus, targets_command, found targets, targets_file",
        ),
        (
            {"tcp": "db:5432", "targets": ["a:1"]},
            't: key \'tcp\': expected ":PORT" (for targets without one) or "*" when the '
            "check has targets, found 'db:5432'",
        ),
        (
            {"http": "https://x/health", "targets": ["a:1"]},
            "t: key 'http': expected the path each target's base URL gets (like /health) "
            "when the check has targets, found 'https://x/health'",
        ),
        (
            {"tcp": ":80", "targets": ["a"], "min_healthy": "120%"},
            "t: key 'min_healthy': expected \"100%\", \"95%\" or a count >= 1, found '120%'",
        ),
        (
            {"tcp": ":80", "targets_dns": "web"},
            't: key \'targets_dns\': expected "name:port" (A/AAAA) or "_service._tcp.name" '
            "(SRV), found 'web'",
        ),
        (
            {"http": "/", "targets": ["a:1"], "server_name": "https://x"},
            "t: key 'server_name': expected a host name, found 'https://x'",
        ),
        (
            {"tls": "*", "targets": ["a:1"], "min_days_valid": -1},
            "t: key 'min_days_valid': expected a number >= 0, found -1",
        ),
        # keys the event-loop engine does not check are refused, never silently unchecked
        (
            {"http": "/", "targets": ["a:1"], "expect_headers": {"X-Frame-Options": "DENY"}},
            "t: key 'expect_headers': not checked on a fleet (a check with targets takes "
            "expect_body, expect_json, expect_status, headers, max_body_bytes, "
            "max_latency_ms, method); declare it in a check of its own without targets",
        ),
        (
            {"tls": "*", "targets": ["a:1"], "refuse_below": "1.2"},
            "t: key 'refuse_below': not checked on a fleet (a check with targets takes "
            "min_days_valid, min_version, server_name); declare it in a check of its own "
            "without targets",
        ),
    ],
)
def test_config_mistakes_are_one_line(spec: dict[str, Any], message: str) -> None:
    kind = next(k for k in ("http", "tls", "tcp") if k in spec)
    module = {"http": http, "tls": tls, "tcp": tcp}[kind]
    with pytest.raises(CheckConfigError) as info:
        module.validate(spec, "t")
    assert str(info.value) == message


def test_a_low_open_file_limit_lowers_the_concurrency_and_says_so() -> None:
    """In a child whose hard limit is 300: the soft limit is raised to it, and the
    concurrency lowered to what fits (the hard limit cannot be raised unprivileged)."""
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, 300))\n"
        "from pytest_promotion.checks.fleet import _open_files\n"
        "print(_open_files(1024)[1])\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
        "print(_open_files(100))\n"
    )
    lines = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines == [
        "concurrency lowered to 172: the open-file limit is 300 (hard limit 300)",
        "300",
        "(100, None)",
    ]


def test_the_collector_thresholds_come_back_after_the_probes() -> None:
    import gc

    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []

    async def probe(member: str) -> Result:
        seen.append(gc.get_threshold())
        return Result(member, True, "ok", "fine")

    with fleet._fewer_collections(), fleet._fewer_collections():  # two fleets at once
        asyncio.run(fleet.bounded(probe, ["a:1"], 1))
    assert seen[0][0] >= fleet.GC_YOUNG
    assert gc.get_threshold() == before
    out = tcp.run({"tcp": ":1", "targets": ["127.0.0.1"]}, Target(env="prod", timeout=1))
    assert out.details["targets"][0]["reason"] == "refused"
    assert gc.get_threshold() == before
