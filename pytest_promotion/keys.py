"""Typed state of a gate run, kept in ``config.stash`` (pytest's ``StashKey``), so that no
module looks another's object up by a plugin name and none imports another for it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .decision import Decision
    from .resolve import PromotionConfig
    from .run import PromotionRun

__all__ = ["CONFIG_KEY", "DECISION_KEY", "PLACEHOLDER_KEY", "RUN_KEY"]

# The config file as read once for the run (launch, ledger, run and plan all use it).
CONFIG_KEY: pytest.StashKey[PromotionConfig] = pytest.StashKey()

# The run's start-time values (environment, versions, waivers, report paths) and facts.
RUN_KEY: pytest.StashKey[PromotionRun] = pytest.StashKey()
# The final decision: set once, by the collector's pipeline; the exit status derives from it.
DECISION_KEY: pytest.StashKey[Decision] = pytest.StashKey()
# Where the placeholder report ("block: did not finish") was written before any conftest.
PLACEHOLDER_KEY = pytest.StashKey[Path]()
