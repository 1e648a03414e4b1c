"""Shared fixtures of the project's own tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# pytester's in-process runs restore sys.modules afterwards: a library first imported inside
# one run is unloaded and re-imported by the next, and requests then mixes two copies of
# http.cookiejar ("You can only merge into CookieJar"). Loading them here keeps one copy.
import requests  # noqa: F401
import urllib3  # noqa: F401

# The same for the plugin's own lazily imported modules: re-importing them in every inner
# run, while probe threads of that run import too, is slow and (CPython 3.11, with pytest's
# assertion-rewriting hook) can fail with "AST constructor recursion depth mismatch".
import pytest_promotion.checks.http
import pytest_promotion.checks.runner
import pytest_promotion.checks.tls
import pytest_promotion.config
import pytest_promotion.gate
import pytest_promotion.items
import pytest_promotion.probes
import pytest_promotion.session  # noqa: F401

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


@pytest.fixture
def read_report(pytester: pytest.Pytester) -> Any:
    def read(name: str = "decision.json") -> dict[str, Any]:
        data: dict[str, Any] = json.loads(Path(pytester.path, name).read_text())
        return data

    return read
