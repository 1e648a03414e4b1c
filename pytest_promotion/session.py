"""The selecting role, in every process that collects (an xdist worker, or the one process
without xdist): it adds the declarative checks, keeps the target's gates, declares them,
and masks secrets in every report, warning and internal error before anyone shows them.

It decides nothing: the controller's :class:`.collector.Collector` does.
"""

from __future__ import annotations

import fnmatch
import itertools
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from .config import Environment
from .gate_facts import declare_gate
from .items import CheckItem, EnvironmentCollector, Prefetch, prefetch_key
from .outputs import mask_properties, mask_report, mask_warning
from .redact import mask_subtest, redact
from .role import Role
from .run import PromotionRun
from .selection import GateMarks, dropped_gates, narrowed_by_lf, partition

__all__ = ["ReportMasker", "ResultWarningsFail", "Selector", "mask_test_report", "waiver_matches"]

# What pytest only warns about a test's own result: in a gate run, each fails the gate
# (a gate that returns False, or whose check fails in a thread, has not passed).
RESULT_WARNINGS = (
    "PytestReturnNotNoneWarning",
    "PytestUnhandledThreadExceptionWarning",
    "PytestUnraisableExceptionWarning",
)


class ResultWarningsFail:
    """Turn the warnings about a gate's own result into errors that fail it (as ``-W
    error::...`` would; an explicit ``-W`` or ini filter of the user's comes later and
    wins). Global filters for the session, not ini ``filterwarnings`` lines: pytest applies
    those again for every test, which cost a gate about 36 k instructions."""

    def __init__(self) -> None:
        self._saved: warnings.catch_warnings[None] | None = None

    def enter(self) -> None:
        # Not in pytest_configure: pytest restores the filters after that hook.
        saved = self._saved = warnings.catch_warnings()  # restores the filters at exit()
        saved.__enter__()
        for name in RESULT_WARNINGS:
            warnings.filterwarnings("error", category=getattr(pytest, name))

    def exit(self) -> None:
        if self._saved is not None:
            self._saved.__exit__(None, None, None)
            self._saved = None


def waiver_matches(key: str, gate_id: str, name: str) -> bool:
    """Whether ``--waive key=...`` names this gate: its id, its name, or its name as
    written in the config or the marker (``agent-health`` for ``staging::agent-health``)."""
    return key in (gate_id, name) or name.rpartition("::")[2] == key


class Selector(Role):
    """Selection and masking hooks of one gate run (both roles)."""

    def __init__(self, run: PromotionRun) -> None:
        self.run = run
        self.environment = run.environment
        # every node collected (tests and collectors), before any selection
        self.collected: list[pytest.Item | pytest.Collector] = []
        self.kept: list[pytest.Item] = []  # what our selection kept
        self.nodeids: dict[pytest.Item, str] = {}  # their ids, read once
        self.result_warnings = ResultWarningsFail()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.result_warnings.enter()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.result_warnings.exit()

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        run = self.run
        chain = " -> ".join(
            f"[{n}]" if n == self.environment.name else n for n in run.promotion.chain
        )
        lines = [f"promotion: {chain} (config: {run.promotion.label})"]
        if run.version:
            lines[0] += f", version {run.version}"
        if self.environment.insecure:
            lines.append(
                f"promotion: WARNING: TLS verification is disabled for {self.environment.name} (insecure = true)"
            )
        lines += [f"promotion: WARNING: {w}" for w in self.environment.warnings]
        lines += [f"promotion: {note}" for note in self.environment.notes]
        return lines

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Any:
        # A wrapper: the selection runs before the plain implementations (-k, -m, a
        # conftest's); gates dropped in whatever order, before or after it, are found from
        # the collect reports at pytest_collection_finish.
        self._select(session, config, items)
        return (yield)

    def _select(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.environment.checks:
            collector = EnvironmentCollector.from_parent(
                session,
                name=self.environment.name,
                nodeid=self.environment.name,
                path=self.run.promotion.path or session.path,
                environment=self.environment,
            )
            checks: list[pytest.Item | pytest.Collector] = list(collector.collect())
            # Reported like any collected node: pytest's "N items / M deselected / K
            # selected" counts the checks too (it said "-1 selected" under -k).
            config.hook.pytest_collectreport(
                report=pytest.CollectReport(collector.nodeid, "passed", None, checks)
            )
            items.extend(c for c in checks if isinstance(c, pytest.Item))
        gates, unmarked, other = partition(items, self.run.promotion.chain, self.environment.name)
        keep = [self._declare(item, marks) for item, marks in gates]
        self._check_waivers(keep)
        facts = self.run.facts
        if facts.usage_errors:
            # The run cannot say what a failure means: no gate runs (the collector reports
            # the usage error, also from a worker).
            keep = []
        if unmarked or other or facts.usage_errors:
            config.hook.pytest_deselected(items=unmarked + other)
            items[:] = keep
        facts.unmarked = len(unmarked)
        self.run.counts.deselected_other = len(other)
        self.kept = keep

    def _declare(self, item: pytest.Item, marks: GateMarks) -> pytest.Item:
        secrets = self.environment.secrets
        nodeid = self.nodeids[item] = item.nodeid
        if secrets or "://" in nodeid:
            masked = redact(nodeid, secrets)
            if masked != nodeid:
                # pytest prints and writes node ids itself: we cannot mask them there.
                self.run.counts.leaky_ids.append(masked)
        if marks.probes:
            item.stash[prefetch_key] = Prefetch(self.environment, marks.probes)
            self.run.probe_gates.append(item)
        # Only an environment with declarative checks has check items (an isinstance test
        # of a pytest node costs ~2 k instructions).
        trigger = _check_trigger(item) if self.environment.checks else None
        if marks.gate is None and trigger is None:
            return item  # nothing to declare: declare_gate would return at once
        try:
            declare_gate(item, nodeid, marks.gate.kwargs if marks.gate else None, trigger)
        except pytest.UsageError as exc:
            self.run.facts.usage_errors.append(str(exc))
        return item

    def _check_waivers(self, keep: list[pytest.Item]) -> None:
        """A waiver must name a selected gate: by id, name, or name as written."""
        waivers = self.run.waivers
        if not waivers:
            return
        names = {item.nodeid: _gate_name(item) for item in keep}
        for key in waivers:
            if any(waiver_matches(key, i, n) for i, n in names.items()):
                continue
            import difflib  # only for a waiver that names no gate

            known = sorted({n.rpartition("::")[2] for n in names.values()} | set(names))
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            self.run.facts.usage_errors.append(
                f"--waive {key}: names no gate of {self.environment.name}{hint}"
            )

    @pytest.hookimpl(wrapper=True)
    def pytest_ignore_collect(
        self, collection_path: Path, config: pytest.Config
    ) -> Generator[None, bool | None, bool | None]:
        """A path under the run's arguments that something excluded from collection
        (--ignore, --ignore-glob, a conftest's collect_ignore, a plugin's
        pytest_ignore_collect) makes the run partial, like -k; pytest's own defaults
        (norecursedirs, virtualenvs, __pycache__) and paths that hold no test file do not."""
        ignored = yield
        if ignored and _may_hold_gates(collection_path, config):
            where = (
                collection_path.relative_to(config.rootpath)
                if collection_path.is_relative_to(config.rootpath)
                else collection_path
            )
            self.run.facts.ignored.append(str(where))
        return ignored

    def pytest_report_collectionfinish(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> list[str]:
        return [self.run.selection_line(len(items))]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        facts = self.run.facts
        items = session.items
        chain, target = self.run.promotion.chain, self.environment.name
        if not facts.usage_errors:  # else no gate runs, on purpose
            facts.dropped = dropped_gates(self.collected, self.kept, items, chain, target)
        facts.narrowed = narrowed_by_lf(session.config)
        nodeids = self.nodeids
        facts.selected = [nodeids.get(item) or item.nodeid for item in items]
        facts.collected = True

    # -- masking, before any reporter, JUnit file or xdist controller sees it ------------
    # (A test's reports: the Collector on the controller, the ReportMasker on a worker.)
    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.passed:  # what it collected, before any hook can drop a gate unseen
            self.collected.extend(report.result)  # collectors too: dropped_gates skips them
            return
        mask_report(report, self.environment.secrets)

    @pytest.hookimpl(tryfirst=True)  # before the warnings summary and JUnit record it
    def pytest_warning_recorded(self, warning_message: Any) -> None:
        mask_warning(warning_message, self.environment.secrets)

    @pytest.hookimpl(tryfirst=True)  # before the terminal prints INTERNALERROR> lines
    def pytest_internalerror(self, excrepr: Any) -> None:
        secrets = self.environment.secrets
        text = str(excrepr)
        masked = redact(text, secrets)
        if masked != text:
            lines = masked.splitlines()

            def toterminal(tw: Any) -> None:
                for line in lines:
                    tw.line(line)

            # pytest renders the repr with toterminal() wherever it shows it.
            excrepr.toterminal = toterminal


def mask_test_report(report: pytest.TestReport, secrets: tuple[str, ...]) -> None:
    """Mask a test's report in place (three times per gate: attribute reads, not the
    report's properties)."""
    if "context" in report.__dict__:  # a subtest: its msg and arguments are shown
        mask_subtest(report, secrets)
    if report.sections or report.outcome != "passed" or "wasxfail" in report.__dict__:
        # A traceback, a skip reason or captured output may show a URL with a password
        # or a ${VAR} value.
        mask_report(report, secrets)
    if report.user_properties:
        mask_properties(report, secrets)  # also URL passwords, escapes


class ReportMasker(Role):
    """An xdist worker's masking of each test report, before xdist sends it to the
    controller (where the Collector masks what it reads, the same way)."""

    def __init__(self, environment: Environment) -> None:
        self.secrets = environment.secrets

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        mask_test_report(report, self.secrets)


def _may_hold_gates(path: Path, config: pytest.Config) -> bool:
    """Whether an ignored path is one pytest would have collected tests from."""
    patterns = config.getini("python_files")

    def test_file(candidate: Path) -> bool:
        return any(fnmatch.fnmatch(candidate.name, p) for p in patterns)

    if not path.is_dir():
        return test_file(path)
    if path.name == "__pycache__" or (path / "pyvenv.cfg").exists():
        return False
    if any(fnmatch.fnmatch(path.name, p) for p in config.getini("norecursedirs")):
        return False
    # Bounded: the first test file found is enough.
    found = (f for f in path.rglob("*.py") if test_file(f))
    return any(itertools.islice(found, 1))


def _check_trigger(item: pytest.Item) -> bool | None:
    """A declarative check's trigger (its table's, else its kind's default), or None for
    a Python gate."""
    if not isinstance(item, CheckItem):  # first: getattr on a test item raises inside
        return None
    check = getattr(item, "check", None)
    if check is None:
        return None
    if check.trigger is not None:
        return bool(check.trigger == "rollback")
    from .checks import kind_module

    return bool(kind_module(check.kind).ROLLBACK)


def _gate_name(item: pytest.Item) -> str:
    for key, value in item.user_properties:
        if key == "promotion.gate":
            return str(value)
    return item.nodeid
