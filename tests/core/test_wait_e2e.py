"""`wait` on a declarative check: poll until healthy, show progress, report attempts."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.reports import RunAndParse


class Warming(BaseHTTPRequestHandler):
    """503 for the first `cold` requests, then 200 {"status": "ok"}."""

    cold = 2
    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        ready = type(self).seen > type(self).cold
        body = json.dumps({"status": "ok" if ready else "starting"}).encode()
        self.send_response(200 if ready else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def warming() -> Iterator[int]:
    handler = type("Handler", (Warming,), {"seen": 0, "cold": 2})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("concurrency", [1, 64])
def test_wait_until_healthy_reports_attempts_and_progress(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, warming: int, concurrency: int
) -> None:
    pytester.makefile(
        ".toml",
        promotion=f"""
[promotion]
concurrency = {concurrency}
[[environments.staging.checks]]
name = "agent"
http = "http://127.0.0.1:{warming}/health"
expect_json = {{ status = "ok" }}
wait = {{ timeout = 20, interval = 0.05, backoff = 1 }}
""",
    )
    result, report = run_and_parse("--env=staging")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "waiting for staging::agent: attempt 1: expected 2xx, got 503*",
            "waiting for staging::agent: attempt 2: expected 2xx, got 503*",
        ]
    )
    assert report["decision"] == "promote"


@pytest.mark.integration
def test_every_attempt_shows_live_while_the_gate_runs(
    pytester: pytest.Pytester, warming: int
) -> None:
    # A real pytest process: its capture takes file descriptor 1 while a gate runs, and a
    # passing gate's captured output is thrown away, with the attempts written in it.
    pytester.makefile(
        ".toml",
        promotion=f"""
[[environments.staging.checks]]
name = "agent"
http = "http://127.0.0.1:{warming}/health"
wait = {{ timeout = 20, interval = 0.05, backoff = 1 }}
""",
    )
    result = pytester.runpytest_subprocess("--env=staging")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "waiting for staging::agent: attempt 1: expected 2xx, got 503*",
            "waiting for staging::agent: attempt 2: expected 2xx, got 503*",
            "*1 passed*",
        ]
    )


def test_wait_deadline_fails_with_last_failure(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    from tests.support import free_port

    pytester.makefile(
        ".toml",
        promotion=f"""
[[environments.staging.checks]]
name = "agent"
http = "http://127.0.0.1:{free_port()}/health"
wait = {{ timeout = 0.5, interval = 0.1, backoff = 1 }}
""",
    )
    result, report = run_and_parse("--env=staging")
    assert result.ret == 1
    assert report["decision"] == "rollback"
    message = report["gates"][0]["message"]
    assert message.startswith("not ready after ")
    assert "connection refused" in message


@pytest.mark.parametrize(
    ("wait", "key", "found"),
    [
        ("timeout = nan", "timeout", "nan"),
        ("interval = nan", "interval", "nan"),
        ("timeout = inf", "timeout", "inf"),
        ("max_interval = +inf", "max_interval", "inf"),
    ],
)
@pytest.mark.integration
def test_wait_value_not_finite_is_a_config_error(
    pytester: pytest.Pytester, wait: str, key: str, found: str
) -> None:
    """nan used to poll forever (timeout) or crash time.sleep with a traceback (interval)."""
    pytester.makefile(
        ".toml",
        promotion=f"""
[[environments.dev.checks]]
name = "port"
tcp = "127.0.0.1:1"
wait = {{ {wait} }}
""",
    )
    result = pytester.runpytest_subprocess("--env=dev", timeout=30)
    assert result.ret == 4
    assert result.stderr.lines[0] == (
        "ERROR: promotion.toml: [[environments.dev.checks]] 'port': "
        f"key 'wait.{key}': expected a number of seconds > 0 and <= 86400, found {found}"
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_progress_line_never_runs_on_from_a_half_written_line(
    pytester: pytest.Pytester,
) -> None:
    # A waiting check's thread can write while pytest has half a line on the terminal
    # ("collected 15 items", before its newline): the progress line starts a line of its
    # own (it ran on: "collected 15 itemswaiting for dev::health: ...").
    from _pytest.terminal import TerminalReporter

    from pytest_promotion.checks.base import Outcome
    from pytest_promotion.items import progress_writer

    out = io.StringIO()
    reporter = TerminalReporter(pytester.parseconfig(), file=out)
    write = progress_writer(reporter)
    reporter.write("collecting ... collected 15 items")
    write("dev::health", 1, Outcome(False, 'status: expected "ok", got "degraded"'))
    lines = out.getvalue().splitlines()
    assert lines == [
        "collecting ... collected 15 items",
        'waiting for dev::health: attempt 1: status: expected "ok", got "degraded"',
    ]
