"""The ``command`` check kind: a tool (linter, formatter check, test runner) succeeds.

Keys:

- ``command``: an argv list, ``["ruff", "check", "."]``. A string is split like a shell
  would split words (``shlex``), but nothing else a shell does happens: a string with
  ``|``, ``&&``, ``;``, ``>``, ``<``, backquotes or ``$`` is refused;
- ``cwd`` (default the rootdir), ``env`` (a table of extra variables), ``timeout``
  (the common key; default 600 s for a command), ``expect_exit`` (default 0),
  ``expect_empty_output`` (stdout must be blank, for ``gofmt -l``), ``junit`` (a JUnit
  XML file the command writes, relative to the rootdir: it must be written by this run
  and list at least one test and no failure or error), ``max_output_bytes`` (how much
  of each of stdout and stderr is kept, the tail, default 1 MiB: the output is read
  through pipes, the rest is counted, never stored).

A tool is looked for on PATH, then next to the running interpreter (a venv's ``bin``);
one found in neither fails "ruff is not installed (looked on PATH and in .../bin)". The
command runs without the ``PROMOTION_*`` run variables (see :mod:`..process`), and when it
exits or times out everything it started is killed, however deep.
``Outcome.details["output_tail"]`` holds the last 40 lines of output, redacted, after a
``[stdout truncated: kept the last N of M bytes]`` line when the cap was passed;
``expect_empty_output`` is judged on all of stdout, not on the tail.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import sysconfig
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..process import Tail, child_environment, collect, kill_group, spawn
from ..redact import redact
from .base import CheckConfigError, CheckFailed, Outcome, Target

__all__ = ["KEYS", "ROLLBACK", "argv_of", "find_program", "junit_counts", "run", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "command": (list, str),
    "cwd": str,
    "env": dict,
    "expect_exit": int,
    "expect_empty_output": bool,
    "junit": str,
    "max_output_bytes": int,
}
ROLLBACK = False
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_OUTPUT = 1024 * 1024
TAIL_LINES = 40
_NONBLANK_LINE = re.compile(rb"^[^\S\n]*\S", re.MULTILINE)
_SHELL_CHARS = ("|", "&", ";", ">", "<", "`", "$(", "${")


def argv_of(value: Any) -> list[str]:
    """The argv of a ``command`` value; ValueError saying what is wrong."""
    if isinstance(value, str):
        bad = [c for c in _SHELL_CHARS if c in value]
        if bad:
            raise ValueError(
                f"the command runs without a shell, so {bad[0]!r} would be passed literally: "
                "write an argv list, or wrap the pipeline in a script"
            )
        value = shlex.split(value)
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise ValueError("expected a non-empty list of strings")
    if not value[0]:
        raise ValueError("the program name is empty")
    return value


def validate(spec: Mapping[str, Any], where: str) -> None:
    try:
        argv_of(spec.get("command"))
    except ValueError as exc:
        raise CheckConfigError(
            f"{where}: key 'command': {exc}, found {spec.get('command')!r}"
        ) from None
    for name, value in spec.get("env", {}).items():
        if not isinstance(value, str):
            raise CheckConfigError(
                f"{where}: key 'env': expected {name} = a string, found {type(value).__name__} {value!r}"
            )
    if spec.get("max_output_bytes", 1) <= 0:
        raise CheckConfigError(
            f"{where}: key 'max_output_bytes': expected > 0, found {spec['max_output_bytes']}"
        )


class _Stream(Tail):
    """One pipe of the command: its kept tail (see :class:`..process.Tail`), and, judged on
    everything written, not only on what is kept, its first non-blank line and how many
    lines are non-blank."""

    def __init__(self, fd: int, cap: int) -> None:
        super().__init__(fd, cap)
        self.first: bytes | None = None  # the first non-blank line, up to 200 bytes
        self._first_done = False
        self._lines = 0  # finished non-blank lines
        self._partial = False  # the unfinished last line has a non-blank byte

    def add(self, chunk: bytes) -> None:
        super().add(chunk)
        if not self._first_done:
            self._first_line(chunk)
        last = chunk.rfind(b"\n")
        if last < 0:
            self._partial = self._partial or bool(chunk.strip())
            return
        first = chunk.find(b"\n")
        if self._partial or chunk[:first].strip():
            self._lines += 1
        self._lines += sum(1 for _ in _NONBLANK_LINE.finditer(chunk, first + 1, last))
        self._partial = bool(chunk[last + 1 :].strip())

    def _first_line(self, chunk: bytes) -> None:
        if self.first is None:
            chunk = chunk.lstrip()
            if not chunk:
                return
            self.first = b""
        line, newline, _ = chunk.partition(b"\n")
        self.first = (self.first + line)[:200]
        self._first_done = bool(newline) or len(self.first) >= 200

    @property
    def nonblank_lines(self) -> int:
        return self._lines + self._partial


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    try:
        argv = argv_of(spec["command"])
    except ValueError as exc:  # a ${VAR} value brought shell syntax into a string command
        return Outcome(False, redact(f"command: {exc}", target.secrets))
    timeout = float(spec.get("timeout", DEFAULT_TIMEOUT))
    cap = int(spec.get("max_output_bytes", DEFAULT_MAX_OUTPUT))
    expect = int(spec.get("expect_exit", 0))
    cwd = target.path(spec.get("cwd", "."))
    env = child_environment({str(k): str(v) for k, v in spec.get("env", {}).items()})
    shown = redact(shlex.join(argv), target.secrets)
    threshold = f"exit {expect}" + (", empty output" if spec.get("expect_empty_output") else "")
    if not cwd.is_dir():
        return Outcome(False, f"{shown}: cwd {cwd} is not a directory", threshold=threshold)
    resolved, looked = find_program(argv[0], cwd, env.get("PATH"))
    if resolved is None:
        return Outcome(False, f"{argv[0]} is not installed (looked {looked})", threshold=threshold)
    junit = target.path(spec["junit"]) if "junit" in spec else None
    before = _stamp(junit) if junit else None
    start = time.monotonic()
    try:
        proc = spawn([resolved, *argv[1:]], cwd=cwd, env=env)
    except OSError as exc:
        return Outcome(
            False, redact(f"{shown}: cannot start: {exc}", target.secrets), threshold=threshold
        )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Stream(proc.stdout.fileno(), cap), _Stream(proc.stderr.fileno(), cap)
    try:
        code = collect(proc, [out, err], timeout)
    finally:  # however this ends (an exception, Ctrl-C): nothing of the command is left
        if proc.returncode is None:
            kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    stdout, stderr = out.text(), err.text()
    elapsed = time.monotonic() - start
    combined = redact(
        stdout.rstrip("\n") + ("\n" + stderr if stderr.strip() else ""), target.secrets
    )
    notes = [
        f"[{name} truncated: kept the last {len(s.data)} of {s.total} bytes]"
        for name, s in (("stdout", out), ("stderr", err))
        if s.truncated
    ]
    details: dict[str, Any] = {
        "output_tail": "\n".join(notes + combined.strip("\n").splitlines()[-TAIL_LINES:]),
        "exit_code": code,
        "elapsed_s": round(elapsed, 3),
        "output_bytes": {"stdout": out.total, "stderr": err.total},
    }

    def fail(message: str, measured: str | None = None) -> Outcome:
        return Outcome(False, redact(message, target.secrets), measured, threshold, details=details)

    if code is None:
        return fail(f"{shown}: timed out after {timeout:g} s (process group killed)", "timeout")
    measured = f"exit {code}"
    if code != expect:
        last = _last_line(stderr) or _last_line(stdout)
        hint = f": {last}" if last else ""
        signal_note = f" (killed by signal {-code})" if code < 0 else ""
        return fail(f"{shown}: exit {code}{signal_note}, expected {expect}{hint}", measured)
    if spec.get("expect_empty_output") and out.first is not None:  # a non-blank byte, anywhere
        first = out.first.rstrip(b"\r").decode("utf-8", "replace")
        lines = out.nonblank_lines
        more = f" and {lines - 1} more line(s)" if lines > 1 else ""
        return fail(
            f"{shown}: expected no output, got {first!r}{more}", f"{out.total} bytes of output"
        )
    if junit is None:
        return Outcome(
            True, f"{shown}: exit {code} in {elapsed:.1f} s", measured, threshold, details=details
        )
    try:
        after = _stamp(junit)
        if after is None:
            raise CheckFailed(f"{shown}: exit {code} but no JUnit report at {spec['junit']}")
        if after == before:
            raise CheckFailed(
                f"{shown}: exit {code} but {spec['junit']} was not written by this run"
            )
        counts, failing = junit_counts(junit)
    except CheckFailed as exc:
        return fail(exc.message, measured)
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k == "passed")
    details["junit"] = counts
    if counts["failed"] or counts["errors"]:
        names = ", ".join(failing[:3]) + (
            f" and {len(failing) - 3} more" if len(failing) > 3 else ""
        )
        return fail(f"{shown}: {summary} ({names})", summary)
    if not sum(counts.values()) or counts["passed"] == 0:
        return fail(f"{shown}: {spec['junit']} lists no passed test ({summary})", summary)
    return Outcome(True, f"{shown}: {summary}", summary, threshold, details=details)


def find_program(program: str, cwd: Path, path: str | None) -> tuple[str | None, str]:
    """Where ``program`` is, and where it was looked for (for the "not installed" message).

    A name without a slash is looked up on ``path``, then next to the running interpreter
    (``.venv/bin/pytest`` run without activating the venv: its ruff and bandit are there,
    not on PATH). A path is taken as it is, relative to ``cwd``."""
    if "/" in program or os.sep in program:
        candidate = program if Path(program).is_absolute() else str(cwd / program)
        runnable = os.path.isfile(candidate) and os.access(candidate, os.X_OK)
        return (candidate if runnable else None), f"at {candidate}"
    found = shutil.which(program, path=path)
    if found is not None:
        return found, "on PATH"
    scripts = [str(Path(sys.executable).parent)]
    sysconfig_scripts = sysconfig.get_path("scripts")
    if sysconfig_scripts and sysconfig_scripts not in scripts:
        scripts.append(sysconfig_scripts)
    for directory in scripts:
        found = shutil.which(program, path=directory)
        if found is not None:
            return found, f"in {directory}"
    return None, f"on PATH and in {' and '.join(scripts)}"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else ""


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


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
