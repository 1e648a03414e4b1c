"""When the network checks start and stop: the hooks that launch every selected probe on
one bounded pool (at session start when nothing can drop a check, else after collection)
and cancel what is pending on Ctrl-C or at the end. Registered beside the Collector, on
the controller or the one process without xdist (never on an xdist worker: there each
item probes when it runs, and the workers give the parallelism)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import pytest

from .items import CheckItem, EarlyStart, progress_writer, start_early
from .keys import RUN_KEY
from .role import Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from .checks.base import Outcome
    from .checks.pool import ProbePool
    from .config import Environment

__all__ = ["ProbeStarter"]


class ProbeStarter(Role):
    """Hooks and pool of one run's concurrent probes."""

    def __init__(self, config: pytest.Config, environment: Environment, concurrency: int) -> None:
        self.config = config
        self.environment = environment
        self.concurrency = concurrency
        self.pool: ProbePool | None = None
        self.early: EarlyStart | None = None

    @pytest.hookimpl(trylast=True)  # after a conftest's sessionstart that sets a target up
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self._may_start_at_once():
            self.early = EarlyStart(self.environment, self.concurrency, self._progress_writer)
            self.pool = self.early.pool  # from here on, Ctrl-C cancels what is pending
            self.early.let_them_start()

    def _may_start_at_once(self) -> bool:
        """Whether the network checks can start before collection: when nothing but a
        conftest can drop one from the selection (probing a check -k left out would be a
        surprise) and this process runs the items itself."""
        option = self.config.option
        return not (
            self.config.pluginmanager.hasplugin("dsession")
            or option.collectonly
            or getattr(option, "keyword", "")
            or getattr(option, "markexpr", "")
            or getattr(option, "deselect", None)
            or getattr(option, "lf", False)
            or getattr(option, "stepwise", False)
        )

    @functools.cached_property
    def _progress_writer(self) -> Callable[[str, int, Outcome], None] | None:
        """The one writer of waiting checks' progress lines (early and late probes share it)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return progress_writer(reporter) if reporter is not None else None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        items = session.items
        # Only an environment with declarative checks has check items: without, no item
        # is looked at (an isinstance test of a pytest node costs ~2 k instructions).
        checks = [i for i in items if isinstance(i, CheckItem)] if self.environment.checks else []
        write = self._progress_writer if checks else None
        if write is not None:
            for item in checks:
                item.on_attempt = write
        if not self.config.option.collectonly:
            self.pool = start_early(checks, self.concurrency, self.early, self._probed(items))
        try:
            return (yield)
        finally:
            self._stop()

    def _probed(self, items: list[pytest.Item]) -> list[pytest.Item] | None:
        """The items that may hold a ``probe`` marker's Prefetch: those the selection gave
        one that are still selected (None: not known, every item is looked at)."""
        run = self.config.stash.get(RUN_KEY, None)
        if run is None:
            return None
        if not run.probe_gates:
            return []
        marked = set(run.probe_gates)
        return [item for item in items if item in marked]

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if self.pool is not None:
            self.pool.cancel_pending()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._stop()  # collection failed: the loop that stops the pool never ran

    def _stop(self) -> None:
        if self.pool is not None:
            self.pool.cancel_pending()
            self.pool.close()
