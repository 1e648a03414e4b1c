"""The Python gates marked ``@pytest.mark.gate(watch=True)``, re-run by the watch.

Each measurement runs them in a child pytest, the same way in a gate run
(``--promotion-watch``, after the workers have ended) and in ``promotion watch`` (which
has no session of its own): the same rootdir, ini file, plugins (``-p``) and selection
(``-k``, ``-m``, the paths) as the gate run, the same target environment; only the
watched gates selected (by :mod:`.child`, loaded with ``-p``), the declarative checks
deselected (the watch runs those itself), the ledger off (the watch records), no cache,
no JUnit, no GitHub files, no rollback. Its JSON report is the evidence.

- At the watch's start a collect-only child finds the watched gates (their names go into
  the watch's start record); none: no child ever runs again. Each measurement then runs
  the files that hold them.
- Fail closed: a child that crashes, writes no report, or does not end by the deadline
  (``gate_timeout``, default the interval; then everything it started is killed) makes
  every watched gate an **error** of that measurement; a gate missing from the report is
  an error; a skip or no data (``gate.measure(None)``) is **inconclusive**; a failure
  (an assertion, a value outside its bounds) is **failed**, a rollback only where the
  gate's ``trigger`` is ``"rollback"`` (as in the gate run).
- Secrets: the child masks its report with the environment's secrets; what is recorded
  here is masked again. No shell: an argv.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..process import kill_group, spawn
from ..redact import redact
from .measure import GateResult

__all__ = ["PytestCall", "PythonGates", "classify_gate", "gate_run_call", "standalone_call"]

POLL = 0.05  # how often a running child is checked for its end and for a stop
OUTPUT_TAIL = 4096  # bytes of the child's output kept for an error message
RUN_VARIABLE = "PROMOTION_WATCH_RUN"  # set in the child: the watch's measurement run
DISCOVERY_TIMEOUT = 120.0  # at least, for the collect-only child at the start
_VALUE = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(.*)$")
# what the child's own environment must not hand it: files every gate run writes
_DROPPED = ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")


@dataclass(frozen=True)
class PytestCall:
    """How the gate run was started, as far as the child repeats it."""

    cwd: Path
    options: tuple[str, ...] = ()  # -p, -c, --rootdir, -k, -m, --promotion-config ...
    paths: tuple[str, ...] = ()  # what it collected (absolute), empty: pytest's default


def classify_gate(gate: Mapping[str, Any], secrets: Sequence[str]) -> GateResult:
    """One watched gate's state from its record in the child's JSON report."""
    outcome = str(gate.get("outcome", ""))
    message = redact(str(gate.get("message") or ""), secrets)
    if outcome == "passed":
        state = "successful"
    elif outcome == "skipped":
        state = "inconclusive"  # measured nothing
    elif outcome == "failed":
        lowered = message.lower()
        if ": no data (" in lowered:
            state = "inconclusive"
        elif ": not a number (" in lowered or "is not a finite number" in lowered:
            state = "error"  # text where a number was needed, a bound that is no number
        else:
            state = "failed"
    else:  # error (a fixture, a teardown), not run, anything else: could not measure
        state = "error"
        message = message or f"the gate did not run ({outcome or 'no outcome'})"
    measured, unit = _value(gate.get("measured"), secrets)
    threshold = gate.get("threshold")
    name = redact(str(gate.get("name") or gate.get("id") or "?"), secrets)
    message = message.removeprefix(f"{name}: ")  # gate.measure's messages name the gate
    return GateResult(
        id=name,
        state=state,
        measured=measured,
        unit=unit,
        threshold=redact(str(threshold), secrets) if threshold is not None else None,
        message=message,
        rollback=bool(gate.get("rollback_trigger")),
    )


def _value(measured: object, secrets: Sequence[str]) -> tuple[float | str | None, str]:
    """``"57.2 ms"`` (what gate.measure records) -> (57.2, "ms"); text stays text."""
    if measured is None:
        return None, ""
    text = redact(str(measured), secrets)
    m = _VALUE.match(text)
    if m is None:
        return text, ""
    return float(m[1]), m[2].strip()


class Running:
    """One child pytest under way: :meth:`wait` for its report."""

    def __init__(self, gates: PythonGates, proc: subprocess.Popen[bytes] | None, work: Path,
                 deadline: float, why: str = "") -> None:  # fmt: skip
        self.gates, self.proc, self.work, self.deadline, self.why = gates, proc, work, deadline, why

    def wait(self, stop: Any = None) -> dict[str, Any] | str | None:
        """The report (a dict), or why there is none (a str); None when ``stop`` was set
        (the child is killed: the measurement is abandoned)."""
        try:
            return self._wait(stop)
        finally:
            self.abandon()  # whatever it left behind (a server a gate started)

    def abandon(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
        shutil.rmtree(self.work, ignore_errors=True)

    def _wait(self, stop: Any) -> dict[str, Any] | str | None:
        proc = self.proc
        if proc is None:
            return self.why
        while proc.poll() is None:
            if stop is not None and stop.is_set():
                return None
            if time.monotonic() >= self.deadline:
                return (f"the Python gates' run did not end within "
                        f"{self.gates.timeout:g} s (gate_timeout): killed")  # fmt: skip
            time.sleep(POLL)
        try:
            report = json.loads((self.work / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = None
        if not isinstance(report, dict) or (not report.get("gates") and report.get("reasons")):
            return self._why_not(proc.returncode, report)
        return report

    def _why_not(self, code: int, report: Any) -> str:
        reasons = report.get("reasons") if isinstance(report, dict) else None
        why = "; ".join(str(r) for r in reasons[:2]) if reasons else ""
        why = why or _tail(self.work / "output.txt") or "no report"
        return redact(f"the Python gates' run ended with exit {code}: {why}", self.gates.secrets)


def _why_not_found(found: Any, answer: Any) -> str:
    """Why the collect-only child found no list: its collection errors, or its end."""
    if isinstance(found, dict) and "error" in found:
        reasons = [str(r) for r in answer.get("reasons", ())] if isinstance(answer, dict) else []
        errors = [r.removeprefix("collection error: ") for r in reasons
                  if r.startswith("collection error: ")]  # fmt: skip
        return str(found["error"]) + (f": {errors[0]}" if errors else "")
    return answer if isinstance(answer, str) else "its collection did not finish"


def _tail(path: Path) -> str:
    """The last non-empty line of the child's output (its error, usually)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - OUTPUT_TAIL))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    lines = [line.strip() for line in lines if line.strip() and not line.startswith("=")]
    return lines[-1][:300] if lines else ""


class PythonGates:
    """The watched Python gates of one watch."""

    def __init__(self, call: PytestCall, env: str, *, version: str | None,
                 previous_version: str | None, timeout: float, secrets: Sequence[str],
                 program: Sequence[str] = (sys.executable, "-m", "pytest")) -> None:  # fmt: skip
        self.call, self.env, self.timeout, self.secrets = call, env, timeout, tuple(secrets)
        self.version, self.previous_version = version, previous_version
        self.program = tuple(program)
        self.found: list[dict[str, str]] | None = None  # None: not known yet
        self.problem = ""  # why they could not be found

    @property
    def names(self) -> list[str]:
        return [g["name"] for g in self.found or ()]

    # -- the child ---------------------------------------------------------------------
    def _argv(self, work: Path, collect_only: bool) -> list[str]:
        argv = [*self.program, *self.call.options, f"--env={self.env}", "-q",
                "-p", "pytest_promotion.watch.child", f"--promotion-watch-gates={work / 'gates.json'}",
                "--promotion-ledger=false", "--promotion-rollback=print",
                f"--promotion-report={work / 'report.json'}", f"--junitxml={work / 'junit.xml'}",
                "-o", f"cache_dir={work / 'cache'}", f"--deselect={self.env}::"]  # fmt: skip
        if self.version:
            argv.append(f"--promotion-version={self.version}")
        if self.previous_version or self.version:
            argv.append(f"--promotion-previous-version={self.previous_version or self.version}")
        if collect_only:
            return [*argv, "--collect-only", *self.call.paths]
        return [*argv, *sorted({g["path"] for g in self.found or ()})]

    def start(self, collect_only: bool = False, timeout: float | None = None) -> Running:
        work = Path(tempfile.mkdtemp(prefix="promotion-watch-"))
        deadline = time.monotonic() + (timeout or self.timeout)
        # the gate run's environment: a ${VAR} of the config resolves as it did there (the
        # command line above overrides the run variables: --env, --promotion-version, ...)
        env = dict(os.environ)
        env[RUN_VARIABLE] = "1"  # a hook that notifies can tell this run from a gate run
        for name in _DROPPED:
            env.pop(name, None)
        argv = self._argv(work, collect_only)
        try:
            with (work / "output.txt").open("wb") as out:
                proc = spawn(argv, cwd=self.call.cwd, env=env, stdout=out,
                             stderr=subprocess.STDOUT)  # fmt: skip
        except OSError as exc:
            return Running(self, None, work, deadline,
                           f"the Python gates' run could not start: {exc.strerror or exc}")  # fmt: skip
        return Running(self, proc, work, deadline)

    # -- the watch's use ---------------------------------------------------------------
    def discover(self, stop: Any = None) -> None:
        """Find the watched gates (a collect-only child): ``found``, or ``problem``."""
        running = self.start(collect_only=True, timeout=max(self.timeout, DISCOVERY_TIMEOUT))
        gates_file = running.work / "gates.json"
        found: Any = None
        try:
            answer = running._wait(stop)
            with contextlib.suppress(OSError, ValueError):
                found = json.loads(gates_file.read_text(encoding="utf-8"))
        finally:
            running.abandon()
        if isinstance(found, list) and all(isinstance(g, dict) for g in found):
            self.found, self.problem = found, ""
        else:
            self.problem = redact("the Python gates marked watch=True could not be collected: "
                                  + _why_not_found(found, answer), self.secrets)  # fmt: skip

    @property
    def active(self) -> bool:
        """Whether a measurement runs a child: gates were found, or finding them failed
        (then each measurement tries again, and counts an error until it can)."""
        return bool(self.found) or self.found is None

    def measure(self, running: Running | None, stop: Any = None) -> list[GateResult] | None:
        """Each watched gate's state in this measurement (None: stopped, abandoned)."""
        if running is None:
            return []
        answer = running.wait(stop)
        if answer is None:
            return None
        if isinstance(answer, str):
            return self._all_error(answer)
        by_id = {str(g.get("id")): g for g in answer.get("gates", ()) if isinstance(g, dict)}
        results = []
        for gate in self.found or ():
            record = by_id.get(gate["id"])
            if record is None:
                results.append(self._error(gate["name"], "the gate did not run in this "
                                           "measurement (removed, renamed or deselected?)"))  # fmt: skip
            else:
                results.append(classify_gate(record, self.secrets))
        return results

    def begin(self, stop: Any = None) -> Running | None:
        """Start this measurement's child (finding the gates first, if still unknown)."""
        if self.found is None:
            self.discover(stop)
        if self.found is None or not self.found:
            return None
        return self.start()

    def unknown(self) -> list[GateResult]:
        """The measurement's result while the gates cannot be found."""
        return [self._error(f"{self.env}::python-gates", self.problem)] if self.problem else []

    def _all_error(self, why: str) -> list[GateResult]:
        return [self._error(g["name"], why) for g in self.found or ()]

    def _error(self, name: str, why: str) -> GateResult:
        return GateResult(redact(name, self.secrets), "error", None, "", None,
                          redact(why, self.secrets), False)  # fmt: skip


def gate_run_call(config: Any, config_path: Path | None) -> PytestCall:
    """The child's call from a gate run's pytest config: its paths made absolute, its
    rootdir and ini file, plugins (``-p``), ``-k``, ``-m``, ``--ignore``/``--deselect``,
    the promotion config."""
    invocation = config.invocation_params
    base = Path(invocation.dir)
    options: list[str] = [f"--rootdir={config.rootpath}"]
    if config.inipath is not None:
        options += ["-c", str(config.inipath)]
    options += _plugins(invocation.args)
    option = config.option
    for flag, value in (("-k", getattr(option, "keyword", "")),
                        ("-m", getattr(option, "markexpr", ""))):  # fmt: skip
        if value:
            options += [flag, str(value)]
    for flag, dest in (("--ignore", "ignore"), ("--ignore-glob", "ignore_glob"),
                       ("--deselect", "deselect")):  # fmt: skip
        for value in getattr(option, dest, None) or ():
            where = str(value) if dest == "deselect" else _absolute(base, str(value))
            options.append(f"{flag}={where}")
    # the file the gate run read, or none where it read none (never one found elsewhere)
    options.append(f"--promotion-config={config_path if config_path is not None else 'none'}")
    paths = tuple(_absolute(base, str(a)) for a in config.args)
    return PytestCall(cwd=Path(config.rootpath), options=tuple(options), paths=paths)


def _absolute(base: Path, arg: str) -> str:
    if os.path.isabs(arg):
        return arg
    return str(base / arg)


def _plugins(invocation: Sequence[str]) -> list[str]:
    """The ``-p NAME`` options of the gate run's command line (``-p no:x`` included)."""
    found: list[str] = []
    it = iter(invocation)
    for arg in it:
        if arg == "-p":
            value = next(it, None)
            if value is not None:
                found += ["-p", value]
        elif arg.startswith("-p") and len(arg) > 2:
            found += ["-p", arg[2:].lstrip("=")]
    return found


def standalone_call(rootdir: Path, config_path: Path | None) -> PytestCall:
    """``promotion watch``: pytest from the project's root, as a gate run there would be."""
    options = (f"--promotion-config={config_path}",) if config_path is not None else ()
    return PytestCall(cwd=rootdir, options=options)
