"""Shared fixtures of the project's own tests."""

from __future__ import annotations

from typing import NoReturn

import pytest

# pytester's in-process runs restore sys.modules afterwards: a library first imported inside
# one run is unloaded and re-imported by the next, and requests then mixes two copies of
# http.cookiejar ("You can only merge into CookieJar"). Loading them here keeps one copy.
import requests  # noqa: F401
import urllib3  # noqa: F401

# The same for the plugin's own lazily imported modules: re-importing them in every inner
# run, while probe threads of that run import too, is slow and (CPython 3.11, with pytest's
# assertion-rewriting hook) can fail with "AST constructor recursion depth mismatch".
# So every module a gate run imports is loaded here, once: pytest rewrites an entry-point
# plugin's modules on import, and where no rewritten pyc is cached (PYTHONDONTWRITEBYTECODE)
# each re-import was a rewrite and a compile -- a fifth of the unit tier's CPU time.
import pytest_promotion.checks.http
import pytest_promotion.checks.runner
import pytest_promotion.checks.tls
import pytest_promotion.cli
import pytest_promotion.collector
import pytest_promotion.config
import pytest_promotion.finalise
import pytest_promotion.gate
import pytest_promotion.items
import pytest_promotion.launch
import pytest_promotion.ledger.sqlite_store
import pytest_promotion.probes
import pytest_promotion.probing
import pytest_promotion.progress
import pytest_promotion.relay
import pytest_promotion.reporting.github
import pytest_promotion.reporting.junit
import pytest_promotion.reporting.terminal
import pytest_promotion.session
import pytest_promotion.watch.plugin
import pytest_promotion.watch.upstream
from tests.reports import ReadReport, RunAndParse

pytest_promotion.cli.build_parser()  # imports every subcommand's module (commands/*)

_LEAKY = (
    "PROMOTION_ENV",
    "PROMOTION_VERSION",
    "PROMOTION_PREVIOUS_VERSION",
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's or CI's own PROMOTION_* and GITHUB_* settings must not leak in."""
    for name in _LEAKY:
        monkeypatch.delenv(name, raising=False)
    # The ledger is on by default (SQLite under .promotion/): the tests of everything else
    # run without it, so that a first promotion's "no rollback target" is not in every
    # report. tests/ledger (its `project` fixture) and tests/watch turn it back on.
    monkeypatch.setenv("PROMOTION_LEDGER", "false")


@pytest.fixture(autouse=True)
def _unit_tier_in_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tier (`-m "not integration"`, the dev gate, under coverage) is in-process: a
    pytest session in a child process costs about a second of CPU that coverage does not
    see. A test that needs one is marked ``integration``."""
    if request.node.get_closest_marker("integration") is not None:
        return

    def refuse(self: pytest.Pytester, *args: object, **kwargs: object) -> NoReturn:
        pytest.fail(
            f"{request.node.nodeid}: runs pytest in a child process; mark it @pytest.mark.integration",
            pytrace=False,
        )

    monkeypatch.setattr(pytest.Pytester, "runpytest_subprocess", refuse)


@pytest.fixture
def read_report(pytester: pytest.Pytester) -> ReadReport:
    """``read_report(name="decision.json")``: the report a pytester run wrote, typed."""
    return ReadReport(pytester)


@pytest.fixture
def run_and_parse(pytester: pytest.Pytester) -> RunAndParse:
    """``result, report = run_and_parse(*args)``: a pytester run with the JSON report."""
    return RunAndParse(pytester)
