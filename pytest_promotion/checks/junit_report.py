"""A JUnit XML report read by its test cases, for the ``command`` kind's ``junit`` key.

A case counts once, by its worst outcome; a suite whose declared totals contradict the
cases it lists (a report that was cut, or written by hand) is refused, as is a file that is
missing or not XML. The file is read as it is parsed (``iterparse``), each case cleared
once counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import CheckFailed

__all__ = ["junit_counts"]

# What a test case's child elements say, worst first: a case with a skip and an error is
# an error (it was counted as skipped, and the gate passed). Surefire's flaky*/rerun*
# elements record attempts before a final outcome: the case's own elements decide.
_OUTCOMES = {"error": "errors", "failure": "failed", "skipped": "skipped"}
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "errors": 3}
# A suite's totals (its attributes) and the element each counts.
_TOTALS = {"tests": "testcase", "failures": "failure", "errors": "error", "skipped": "skipped"}


class _Suite:
    """One ``<testsuite>``: its declared totals and what its cases actually hold."""

    def __init__(self, attrs: Mapping[str, str], name: str) -> None:
        self.declared = {k: attrs[k] for k in _TOTALS if k in attrs}
        self.found = dict.fromkeys(_TOTALS.values(), 0)
        self.name = name

    def contradiction(self) -> str | None:
        for key, value in self.declared.items():
            try:
                declared = int(value)
            except ValueError:
                return f"suite {self.name!r} has {key}={value!r}, not a number"
            found = self.found[_TOTALS[key]]
            if declared != found:
                return f"suite {self.name!r} says {key}={declared} but lists {found}"
        return None


def junit_counts(path: Path) -> tuple[dict[str, int], list[str]]:
    """``{"passed", "failed", "errors", "skipped"}`` counted from the testcases (a case
    counts once, by its worst outcome), and the names of the failing ones. Raises
    CheckFailed for a missing or unreadable file, or a suite whose totals contradict its
    cases (a report that was cut, or written by hand)."""
    from xml.etree.ElementTree import ParseError, iterparse

    if not path.is_file():
        raise CheckFailed(f"JUnit report {path} not found")
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failing: list[str] = []
    suites: list[_Suite] = []
    state: str | None = None
    try:
        # expat fetches no external entities and refuses entity-expansion bombs
        for event, elem in iterparse(str(path), events=("start", "end")):  # noqa: S314
            tag = elem.tag
            if event == "start":
                state = _started(elem, suites, state)
                continue
            if suites and tag in suites[-1].found:
                suites[-1].found[tag] += 1
            if tag == "testcase":
                counts[state or "passed"] += 1
                if state in ("failed", "errors"):
                    failing.append(_case_name(elem))
                state = None
                elem.clear()
            elif tag == "testsuite":
                _close_suite(suites)
    except ParseError as exc:
        raise CheckFailed(f"JUnit report {path} is not valid XML: {exc}") from None
    except ValueError as exc:  # a suite's totals contradict its cases
        raise CheckFailed(f"JUnit report {path}: {exc}") from None
    return counts, failing


def _started(elem: Any, suites: list[_Suite], state: str | None) -> str | None:
    """The state of the test case after the start of ``elem`` (None outside a case)."""
    tag = elem.tag
    if tag == "testsuite":
        suites.append(_Suite(elem.attrib, elem.get("name", "?")))
    elif tag == "testcase":
        return "passed"
    elif state is not None and tag in _OUTCOMES:
        worse = _OUTCOMES[tag]
        return worse if _RANK[worse] > _RANK[state] else state
    return state


def _case_name(elem: Any) -> str:
    name = elem.get("name", "?")
    return f"{elem.get('classname')}.{name}" if elem.get("classname") else name


def _close_suite(suites: list[_Suite]) -> None:
    """A suite ended: its totals must match its cases; a nested suite's count in its
    parent's totals too."""
    suite = suites.pop()
    why = suite.contradiction()
    if why:
        raise ValueError(why)
    if suites:
        for tag, n in suite.found.items():
            suites[-1].found[tag] += n
