"""A heartbeat for long gates: while a declarative check runs longer than ``EVERY``
seconds (a test tier under the command kind, mypy), a line says which one and for how
long, so a first run never sits silent for a minute."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from .role import Role

__all__ = ["EVERY", "Heartbeat"]

EVERY = 15.0


@contextlib.contextmanager
def suspended(config: pytest.Config) -> Iterator[None]:
    """Output capture off while the terminal is written to (as pytest's live logging does)."""
    capture: Any = config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


class Heartbeat(Role):
    """Registered on the controller of a gate run whose environment has declarative
    checks (plugin.py): a wrapper around every test call costs each gate."""

    def __init__(self, config: pytest.Config, every: float | None = None) -> None:
        self.config = config
        self.every = EVERY if every is None else every

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        check = getattr(item, "check", None)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if check is None or reporter is None:
            return (yield)
        done = threading.Event()
        started = time.monotonic()
        kind = getattr(check, "kind", "check")

        def beat() -> None:
            while not done.wait(self.every):
                line = f"  {item.nodeid} ({kind}): running for {time.monotonic() - started:.0f} s"
                # the gate's own output is captured; this line is the run's, not the gate's
                with suspended(self.config):
                    reporter.ensure_newline()
                    reporter.write_line(line)

        thread = threading.Thread(target=beat, name="promotion-heartbeat", daemon=True)
        thread.start()
        try:
            return (yield)
        finally:
            done.set()
            thread.join()
