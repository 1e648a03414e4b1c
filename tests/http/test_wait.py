from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from pytest_promotion.checks import http
from pytest_promotion.checks.base import CheckConfigError, Outcome, Target
from pytest_promotion.checks.wait import (
    WaitPolicy,
    parse_wait,
    policy_for,
    run_with_wait,
    wait_until_healthy,
)

from .conftest import Servers

pytestmark = pytest.mark.integration


class Clock:
    """Fake time: each attempt costs ``cost`` seconds, sleeps are recorded."""

    def __init__(self, cost: float = 0.0) -> None:
        self.now = 0.0
        self.cost = cost
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def script(clock: Clock, results: Iterable[bool]) -> Callable[[], Outcome]:
    it = iter(results)

    def check() -> Outcome:
        clock.now += clock.cost
        ok = next(it)
        return Outcome(ok, "200 in 5 ms" if ok else "expected 200, got 503", 5.0, "<= 500 ms", "ms")

    return check


def test_ready_after_failures_with_backoff() -> None:
    clock = Clock()
    seen: list[tuple[int, bool]] = []
    out = run_with_wait(
        script(clock, [False, False, True]),
        interval=1,
        timeout=30,
        backoff=2,
        on_attempt=lambda n, o: seen.append((n, o.passed)),
        sleep=clock.sleep,
        clock=clock,
    )
    assert out.passed
    assert out.message == "ready after 3 attempts in 3.0 s: 200 in 5 ms"
    assert clock.sleeps == [1, 2]
    assert seen == [(1, False), (2, False), (3, True)]
    assert out.details["attempts"] == 3 and out.details["time_to_ready_s"] == 3.0
    assert (out.measured, out.threshold, out.unit) == (5.0, "<= 500 ms", "ms")


def test_deadline_with_a_last_attempt_at_the_deadline() -> None:
    clock = Clock()
    out = run_with_wait(
        script(clock, [False] * 100),
        interval=2,
        timeout=10,
        backoff=1.5,
        max_interval=3,
        sleep=clock.sleep,
        clock=clock,
    )
    assert not out.passed
    assert clock.sleeps == [2, 3, 3, 2]  # capped at 3, cut at the deadline
    assert out.message == "not ready after 5 attempts in 10.0 s: expected 200, got 503"
    assert out.details["time_to_ready_s"] is None and out.details["attempts"] == 5


def test_docker_healthcheck_semantics() -> None:
    # interval 30 s, timeout 10 s (on the check), retries 3, start period 40 s
    clock = Clock(cost=10)
    policy = parse_wait(
        {"interval": 30, "retries": 3, "start_period": 40, "backoff": 1, "timeout": 600}, "W"
    )
    out = wait_until_healthy(script(clock, [False] * 20), policy, sleep=clock.sleep, clock=clock)
    # attempts end at t=10, 50, 90, 130; the first falls in the start period and does not count
    assert not out.passed
    assert out.details["attempts"] == 4
    assert out.message.startswith("not ready after 4 attempts in 130.0 s: ")


def test_success_resets_retries_and_consecutive_successes() -> None:
    clock = Clock()
    out = run_with_wait(
        script(clock, [True, False, True, True, True]),
        interval=1,
        timeout=60,
        retries=2,
        consecutive_successes=3,
        sleep=clock.sleep,
        clock=clock,
    )
    assert out.passed and out.details["attempts"] == 5


def test_crashing_check_counts_as_failure() -> None:
    clock = Clock()

    def boom() -> Outcome:
        raise RuntimeError("bug")

    out = run_with_wait(boom, interval=1, timeout=5, retries=2, sleep=clock.sleep, clock=clock)
    assert not out.passed
    assert out.message == "not ready after 2 attempts in 1.0 s: RuntimeError: bug"


def test_parse_wait_and_policy_for() -> None:
    assert parse_wait({}, "W") == WaitPolicy()
    assert parse_wait({"timeout": 5, "interval": 0.5}, "W") == WaitPolicy(timeout=5, interval=0.5)
    assert policy_for({"http": "/h"}) is None
    assert policy_for({"http": "/h", "consecutive_successes": 3}) == WaitPolicy(
        consecutive_successes=3
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"timeot": 5},
            "W: unknown key 'wait.timeot' "
            "(known keys: timeout, interval, retries, start_period, backoff, max_interval)",
        ),
        (
            {"timeout": 0},
            "W: key 'wait.timeout': expected a number of seconds > 0 and <= 86400, found 0",
        ),
        (
            {"retries": 1.5},
            "W: key 'wait.retries': expected an integer >= 1 and <= 1000000, found 1.5",
        ),
        ({"backoff": 0.5}, "W: key 'wait.backoff': expected a number >= 1 and <= 100, found 0.5"),
        (
            {"interval": "2s"},
            "W: key 'wait.interval': expected a number of seconds > 0 and <= 86400, found '2s'",
        ),
        (
            {"start_period": True},
            "W: key 'wait.start_period': expected a number of seconds >= 0 and <= 86400, "
            "found True",
        ),
        # nan compares false with every bound, inf passes a lower one: both would poll
        # forever or crash time.sleep, so a value must be finite and bounded
        (
            {"timeout": float("nan")},
            "W: key 'wait.timeout': expected a number of seconds > 0 and <= 86400, found nan",
        ),
        (
            {"timeout": float("inf")},
            "W: key 'wait.timeout': expected a number of seconds > 0 and <= 86400, found inf",
        ),
        (
            {"interval": float("nan")},
            "W: key 'wait.interval': expected a number of seconds > 0 and <= 86400, found nan",
        ),
        (
            {"max_interval": float("inf")},
            "W: key 'wait.max_interval': expected a number of seconds > 0 and <= 86400, found inf",
        ),
        (
            {"start_period": float("nan")},
            "W: key 'wait.start_period': expected a number of seconds >= 0 and <= 86400, found nan",
        ),
        (
            {"backoff": float("inf")},
            "W: key 'wait.backoff': expected a number >= 1 and <= 100, found inf",
        ),
        (
            {"timeout": 86401},
            "W: key 'wait.timeout': expected a number of seconds > 0 and <= 86400, found 86401",
        ),
        (
            {"retries": 10**30},
            f"W: key 'wait.retries': expected an integer >= 1 and <= 1000000, found {10**30}",
        ),
    ],
)
def test_parse_wait_rejects(table: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        parse_wait(table, "W")
    assert str(info.value) == message


def test_waiting_for_a_real_server_to_come_up(servers: Servers) -> None:
    calls = {"n": 0}

    def flaky(h: Any) -> None:
        calls["n"] += 1
        h.reply(200, {"status": "ok" if calls["n"] >= 3 else "starting"})

    server = servers.http({"/ready": flaky})
    target = Target(env="dev", base_url=server.url, timeout=1.0)
    spec = {"http": "/ready", "expect_json": {"status": "ok"}}
    out = run_with_wait(lambda: http.run(spec, target), interval=0.05, timeout=5)
    assert out.passed
    assert out.message.startswith("ready after 3 attempts in ")
