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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..process import Tail, child_environment, collect, kill_group, spawn
from ..redact import redact
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .junit_report import junit_counts

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
    try:
        ran = _execute([resolved, *argv[1:]], cwd, env, timeout, cap)
    except OSError as exc:
        return Outcome(
            False, redact(f"{shown}: cannot start: {exc}", target.secrets), threshold=threshold
        )
    judge = _Judge(shown, threshold, target.secrets, ran)
    failed = judge.exit(expect, timeout)
    if failed is None:
        failed = judge.output(spec)  # judged only on the expected exit code
    if failed is not None:
        return failed
    if junit is None:
        return judge.passed(f"{shown}: exit {ran.code} in {ran.elapsed:.1f} s", f"exit {ran.code}")
    return judge.junit(spec["junit"], junit, before)


@dataclass
class _Ran:
    """What the command did: its exit code (None: timed out), its two pipes, how long."""

    code: int | None
    out: _Stream
    err: _Stream
    elapsed: float


def _execute(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, cap: int) -> _Ran:
    """Run ``argv`` to its end or its timeout; nothing it started outlives this call."""
    start = time.monotonic()
    proc = spawn(argv, cwd=cwd, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Stream(proc.stdout.fileno(), cap), _Stream(proc.stderr.fileno(), cap)
    try:
        code = collect(proc, [out, err], timeout)
    finally:  # however this ends (an exception, Ctrl-C): nothing of the command is left
        if proc.returncode is None:
            kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    return _Ran(code, out, err, time.monotonic() - start)


class _Judge:
    """The outcome of a command that ran: each method judges one expectation and returns
    the failing outcome, or None when that expectation holds. Every outcome carries the
    redacted output tail, the exit code and the byte counts in its details."""

    def __init__(self, shown: str, threshold: str, secrets: tuple[str, ...], ran: _Ran) -> None:
        self.shown, self.threshold, self.secrets, self.ran = shown, threshold, secrets, ran
        self.stdout, self.stderr = ran.out.text(), ran.err.text()
        combined = redact(
            self.stdout.rstrip("\n") + ("\n" + self.stderr if self.stderr.strip() else ""),
            secrets,
        )
        notes = [
            f"[{name} truncated: kept the last {len(s.data)} of {s.total} bytes]"
            for name, s in (("stdout", ran.out), ("stderr", ran.err))
            if s.truncated
        ]
        self.details: dict[str, Any] = {
            "output_tail": "\n".join(notes + combined.strip("\n").splitlines()[-TAIL_LINES:]),
            "exit_code": ran.code,
            "elapsed_s": round(ran.elapsed, 3),
            "output_bytes": {"stdout": ran.out.total, "stderr": ran.err.total},
        }

    def fail(self, message: str, measured: str | None = None) -> Outcome:
        return Outcome(
            False, redact(message, self.secrets), measured, self.threshold, details=self.details
        )

    def passed(self, message: str, measured: str) -> Outcome:
        return Outcome(True, message, measured, self.threshold, details=self.details)

    def exit(self, expect: int, timeout: float) -> Outcome | None:
        code, shown = self.ran.code, self.shown
        if code is None:
            return self.fail(
                f"{shown}: timed out after {timeout:g} s (process group killed)", "timeout"
            )
        if code == expect:
            return None
        last = _last_line(self.stderr) or _last_line(self.stdout)
        hint = f": {last}" if last else ""
        signal_note = f" (killed by signal {-code})" if code < 0 else ""
        return self.fail(
            f"{shown}: exit {code}{signal_note}, expected {expect}{hint}", f"exit {code}"
        )

    def output(self, spec: Mapping[str, Any]) -> Outcome | None:
        out = self.ran.out
        if not spec.get("expect_empty_output") or out.first is None:
            return None  # out.first: a non-blank byte, anywhere in stdout
        first = out.first.rstrip(b"\r").decode("utf-8", "replace")
        lines = out.nonblank_lines
        more = f" and {lines - 1} more line(s)" if lines > 1 else ""
        return self.fail(
            f"{self.shown}: expected no output, got {first!r}{more}",
            f"{out.total} bytes of output",
        )

    def junit(self, name: str, junit: Path, before: tuple[int, int, int] | None) -> Outcome:
        """The JUnit report was written by this run and lists passed tests and no failure."""
        shown, code = self.shown, self.ran.code
        try:
            after = _stamp(junit)
            if after is None:
                raise CheckFailed(f"{shown}: exit {code} but no JUnit report at {name}")
            if after == before:
                raise CheckFailed(f"{shown}: exit {code} but {name} was not written by this run")
            counts, failing = junit_counts(junit)
        except CheckFailed as exc:
            return self.fail(exc.message, f"exit {code}")
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k == "passed")
        self.details["junit"] = counts
        if counts["failed"] or counts["errors"]:
            names = ", ".join(failing[:3]) + (
                f" and {len(failing) - 3} more" if len(failing) > 3 else ""
            )
            return self.fail(f"{shown}: {summary} ({names})", summary)
        if not sum(counts.values()) or counts["passed"] == 0:
            return self.fail(f"{shown}: {name} lists no passed test ({summary})", summary)
        return self.passed(f"{shown}: {summary}", summary)


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
