"""A pytest plugin that marks the phases of a run for callgrind (bench/README.md, "Where
the per-gate cost goes now"): it calls ``os.getppid()`` at each phase boundary, and
``valgrind --tool=callgrind --dump-before=getppid`` writes one count per phase.

    PYTHONPATH=bench valgrind --tool=callgrind --dump-before=getppid \\
        .venv/bin/python -m pytest -p phasedump -q --env=staging

Dumps, in order: start-up (up to the end of the trylast ``pytest_configure`` calls
registered before this one), the rest of configure and session start, collection, the
test loop (with the decision made in the collector's loop wrapper), session finish,
terminal summary and unconfigure; the file without a part number is the exit.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


def _mark() -> None:
    os.getppid()  # the dump happens before this call


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    _mark()


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    _mark()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    _mark()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    _mark()
    try:
        return (yield)
    finally:
        _mark()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    _mark()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _mark()
