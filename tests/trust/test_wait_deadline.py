"""``wait.timeout`` is the total deadline: the last attempt gets only the time left
(issue 11, item 18: `wait = { timeout = 5 }` with a 4 s check ended after 9 s)."""

from __future__ import annotations

import json
import re
import sys

import pytest

from tests.reports import RunAndParse

pytestmark = pytest.mark.integration


def test_the_last_attempt_gets_only_the_time_left(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    sleeper = json.dumps([sys.executable, "-c", "import time; time.sleep(60)"])
    pytester.makefile(
        ".toml",
        promotion=f"""
        [environments.dev]
        [[environments.dev.checks]]
        name = "ready"
        command = {sleeper}
        timeout = 2
        wait = {{ timeout = 3, interval = 0.5 }}
        """,
    )
    result, report = run_and_parse("--env=dev", subprocess=True)
    assert result.ret == 1
    message = report["gates"][0]["message"]
    assert message.startswith("not ready after 2 attempts"), message
    # the second attempt was cut to what was left of the 3 s (at most 1 s), not given 2 s
    cut = re.search(r"timed out after ([0-9.]+) s", message)
    assert cut is not None, message
    assert float(cut[1]) < 2, message
