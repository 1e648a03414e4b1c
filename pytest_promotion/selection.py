"""Which gates run for an environment: the environment markers, cumulative along the chain.

A ``dev`` gate runs for dev and every later environment ("staging runs all development
gates"); ``@pytest.mark.staging(only=True)`` runs for staging alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .environment import spellings

if TYPE_CHECKING:
    import pytest

__all__ = [
    "EnvMark",
    "GateMarks",
    "applies",
    "dropped_gates",
    "narrowed_by_lf",
    "partition",
    "read_marks",
]


class EnvMark(NamedTuple):
    """One environment marker on a test: its environment and whether it is exclusive.
    (A NamedTuple: one is made per marker of every test at collection.)"""

    env: str
    only: bool = False


def applies(marks: Iterable[EnvMark], target: str, chain: Sequence[str]) -> bool | None:
    """Whether a gate with these marks runs for ``target``.

    None means the test carries no environment marker at all: it is not a gate.

    >>> applies([EnvMark("dev")], "prod", ("dev", "staging", "prod"))
    True
    >>> applies([EnvMark("staging", only=True)], "prod", ("dev", "staging", "prod"))
    False
    """
    marks = list(marks)
    if not marks:
        return None
    position = chain.index(target)
    for mark in marks:
        if mark.env == target:
            return True
        if not mark.only and mark.env in chain and chain.index(mark.env) < position:
            return True
    return False


class GateMarks:
    """What collection reads from a test's markers: its environment markers, its closest
    ``gate`` marker and its ``probe`` markers (closest first)."""

    __slots__ = ("envs", "gate", "probes")  # a plain class: a NamedTuple costs start-up

    def __init__(
        self, envs: list[EnvMark], gate: pytest.Mark | None, probes: list[pytest.Mark]
    ) -> None:
        self.envs, self.gate, self.probes = envs, gate, probes


def read_marks(marks: Iterable[pytest.Mark], chain: Sequence[str]) -> GateMarks:
    """One pass over a node's markers, closest first (``node.iter_markers()``)."""
    envs: list[EnvMark] = []
    probes: list[pytest.Mark] = []
    gate: pytest.Mark | None = None
    names = spellings(tuple(chain))  # prod -> production where the chain says so
    for mark in marks:
        name = mark.name
        if name in names:
            envs.append(EnvMark(names[name], bool(mark.kwargs.get("only", False))))
        elif name == "gate":
            gate = gate or mark
        elif name == "probe":
            probes.append(mark)
    return GateMarks(envs, gate, probes)


_UNSET: Any = object()


def partition(
    items: list[pytest.Item], chain: Sequence[str], target: str
) -> tuple[list[tuple[pytest.Item, GateMarks]], list[pytest.Item], list[pytest.Item]]:
    """Split collected tests into the gates of ``target`` (each with its marks), the tests
    with no environment marker (not gates) and the gates of other environments.

    This runs once per test: a parent's markers (module, class) are the same for all its
    children, so they are read once per parent, and a test's own markers are read again
    only when one of them is ours."""
    relevant = {*spellings(tuple(chain)), "gate", "probe"}
    gates: list[tuple[pytest.Item, GateMarks]] = []
    unmarked: list[pytest.Item] = []
    other: list[pytest.Item] = []
    parent: Any = _UNSET
    inherited: tuple[GateMarks, bool | None]  # set with parent: never read unset
    for item in items:
        if item.parent is not parent:
            parent = item.parent
            found = read_marks(parent.iter_markers() if parent is not None else (), chain)
            inherited = (found, applies(found.envs, target, chain))
        marks, verdict = inherited
        for mark in item.own_markers:
            if mark.name in relevant:
                marks = read_marks(item.iter_markers(), chain)
                verdict = applies(marks.envs, target, chain)
                break
        if verdict is None:
            unmarked.append(item)
        elif not verdict:
            other.append(item)
        else:
            gates.append((item, marks))
    return gates, unmarked, other


def dropped_gates(
    collected: Sequence[pytest.Item | pytest.Collector],
    kept: list[pytest.Item],
    final: list[pytest.Item],
    chain: Sequence[str],
    target: str,
) -> list[str]:
    """The ids of gates of ``target`` that were collected (or added and kept by our
    selection) but are missing from the final items: -k, -m, --deselect, --sw, or any
    plugin's or conftest's pytest_collection_modifyitems dropped them, whatever order the
    hooks ran in. The tests our selection deselected are not gates of the target.
    ``collected`` may hold collectors (modules, classes): their tests are listed too."""
    import pytest  # imported already; only a node missing from the final items is tested

    remaining = set(final)
    missing = dict.fromkeys(item for item in collected if item not in remaining)
    missing.update(dict.fromkeys(item for item in kept if item not in remaining))
    dropped = []
    for item in missing:
        if not isinstance(item, pytest.Item):
            continue
        marks = read_marks(item.iter_markers(), chain)
        if applies(marks.envs, target, chain):
            dropped.append(item.nodeid)
    return dropped


def narrowed_by_lf(config: pytest.Config) -> str | None:
    """--lf leaves the files and tests without a recorded failure out of collection itself,
    where no selection of ours sees them (whole gate files included). pytest's lfplugin
    counts both (private attributes: when they are gone, any --lf run with recorded
    failures is taken as partial). With no recorded failure among the selected tests,
    pytest runs everything, and the run is whole."""
    if not config.getoption("lf", False):
        return None
    lf = config.pluginmanager.get_plugin("lfplugin")
    rerun = getattr(lf, "_previously_failed_count", _UNSET)
    skipped = getattr(lf, "_skipped_files", _UNSET)
    if rerun is _UNSET or skipped is _UNSET:
        if getattr(lf, "lastfailed", True):
            return "--lf may have run only the previously failed tests"
        return None
    if not rerun and not skipped:
        return None
    files = f"{skipped} file{'' if skipped == 1 else 's'}"
    if not rerun:
        return f"--lf left {files} out"
    tests = f"--lf ran only the {rerun} previously failed test{'' if rerun == 1 else 's'}"
    return f"{tests} ({files} left out)" if skipped else tests
