"""Benchmark: what the plugin costs a gate run (issue 2, item 13).

1. A suite of 2,000 trivial passing gates run with ``--env=staging``, against the same
   run with ``-p no:promotion`` (the goal: <= 5 % more); also with ``--promotion-report``,
   and (``--ci``) as the CI step runs it, with ``--junitxml`` on both sides.
2. Start-up: ``--collect-only`` on an empty suite, plugin active (``--env``) and switched
   off (the goal: <= 80 ms added).

Wall time is the headline, as the issue asks: median and best of ``--runs`` runs, the
variants interleaved run by run so that drift in the machine's load hits all of them alike,
after one untimed warm-up run of each. Bytecode is cached as for an installed package, in a
temporary ``PYTHONPYCACHEPREFIX`` (nothing is written into the venv or the checkout), also
where the environment sets ``PYTHONDONTWRITEBYTECODE`` (``--no-bytecode`` measures that).

On a shared VM wall and CPU time drift by +-25 % from run to run; instruction counts do
not. When ``valgrind`` is on PATH each command also runs once under callgrind, with
``PYTHONHASHSEED=0`` (``--seed``; dict layouts vary with the seed: +-0.3 % otherwise). Counted: the
pytest process and the programs it runs (git, file). Not counted: the copy of the pytest
process that pytest-benchmark's ``subprocess`` call forks and that never execs (``hg`` is
not installed): callgrind writes it the parent's counts up to the fork, so a sum over every
file counts most of start-up twice, in both variants (shown as "all files").

Run: ``make bench`` or ``.venv/bin/python bench/core_overhead.py [--runs N] [--gates N]
[--ci] [--no-valgrind] [--no-bytecode]``.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SUITE = """
import pytest

pytestmark = pytest.mark.dev

@pytest.mark.parametrize("n", range({n}))
def test_gate(n):
    assert n >= 0
"""
INI = "[pytest]\nmarkers =\n    dev: a gate\n    staging: a gate\n    prod: a gate\n"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
OFF = ["-p", "no:promotion"]
ON = ["--env=staging"]
ON_REPORT = ["--env=staging", "--promotion-report=d.json"]
CI_OFF = ["-p", "no:promotion", "--junitxml=gate.xml"]
CI_ON = ["--env=staging", "--junitxml=gate.xml", "--promotion-report=d.json"]
GOAL_PCT, GOAL_STARTUP_MS = 5.0, 80.0


class Runner:
    """One command line in one directory, and its wall and CPU times."""

    def __init__(
        self, argv: list[str], cwd: Path, env: dict[str, str], expect: str, returncode: int = 0
    ) -> None:
        self.argv, self.cwd, self.env = argv, cwd, env
        self.expect, self.returncode = expect, returncode
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.instructions: tuple[int, int] | None = None  # (counted, all files)

    def run(self, keep: bool = True) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            self.argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.check(proc.returncode, proc.stdout)
        if keep:
            self.wall.append(elapsed)
            self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    def callgrind(self, out: Path, seed: int = 0) -> None:
        """Instructions of one run under callgrind (see the module docstring)."""
        out.mkdir()
        valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes"]
        valgrind.append(f"--callgrind-out-file={out}/cg.%p")
        env = dict(self.env, PYTHONHASHSEED=str(seed))
        with subprocess.Popen(
            valgrind + self.argv,
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as proc:
            stdout, _ = proc.communicate()
        self.check(proc.returncode, stdout)
        files = []  # (pid, command line, instructions)
        for path in out.iterdir():
            text = path.read_text(errors="replace")
            cmd = re.search(r"^cmd: (.*)$", text, re.M)
            total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            pid = int(path.name.rsplit(".", 1)[1])
            files.append((pid, cmd.group(1) if cmd else "", int(total.group(1)) if total else 0))
        root = next(cmd for pid, cmd, _ in files if pid == proc.pid)
        # A copy forked from pytest that never exec'd still shows pytest's command line.
        counted = sum(n for pid, cmd, n in files if pid == proc.pid or cmd != root)
        self.instructions = (counted, sum(n for _, _, n in files))

    def check(self, returncode: int, stdout: str) -> None:
        """A broken run must not give a fast number."""
        if returncode != self.returncode or self.expect not in stdout:
            sys.exit(
                f"{' '.join(self.argv)}: exit {returncode}, expected {self.returncode} and "
                f"{self.expect!r}:\n{stdout[-2000:]}"
            )


def interleaved(runners: list[Runner], runs: int) -> None:
    for runner in runners:  # warm-up: page cache, bytecode in PYTHONPYCACHEPREFIX
        runner.run(keep=False)
    for _ in range(runs):
        for runner in runners:
            runner.run()


def pct(base: float, value: float) -> float:
    return (value - base) / base * 100


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="timed runs per variant")
    parser.add_argument("--gates", type=int, default=2000)
    parser.add_argument("--ci", action="store_true", help="also the CI step, with --junitxml")
    parser.add_argument("--no-valgrind", action="store_true", help="skip instruction counts")
    parser.add_argument("--seed", type=int, default=0, help="PYTHONHASHSEED under callgrind")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="PYTHONDONTWRITEBYTECODE=1: compile every run"
    )
    args = parser.parse_args()
    valgrind = shutil.which("valgrind") is not None and not args.no_valgrind

    with tempfile.TemporaryDirectory(prefix="core-overhead-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PROMOTION_"))}
        # The ledger's cost has its own goal and benchmark (bench/ledger.py): off here.
        env["PROMOTION_LEDGER"] = "false"
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        suite, empty = root / "suite", root / "empty"
        for directory in (suite, empty):
            directory.mkdir()
            # The environment markers registered on both sides: without the plugin pytest
            # would otherwise warn about each unknown mark, and that would flatter it.
            (directory / "pytest.ini").write_text(INI)
        (suite / "test_gates.py").write_text(SUITE.format(n=args.gates))

        passed = f"{args.gates} passed"
        gates = f"{args.gates:,} gates"
        pairs = [  # (label, without the plugin, with it)
            (f"{gates}, `--env=staging`", OFF, ON),
            (f"{gates}, `--env=staging --promotion-report`", OFF, ON_REPORT),
        ]
        if args.ci:
            pairs.append(
                (f"{gates}, CI step: both with `--junitxml`, + `--promotion-report`", CI_OFF, CI_ON)
            )
        runners: dict[tuple[str, ...], Runner] = {}
        for _, *variants in pairs:
            for argv in variants:
                runners.setdefault(tuple(argv), Runner(PYTEST + argv, suite, env, passed))
        # 5: pytest's "no tests collected" (the plugin blocks too, but leaves that status).
        start_off = Runner(PYTEST + ["--collect-only"] + OFF, empty, env, "no tests", 5)
        start_on = Runner(PYTEST + ["--collect-only"] + ON, empty, env, "no gate selected", 5)

        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        interleaved(list(runners.values()), args.runs)
        interleaved([start_off, start_on], 2 * args.runs)
        timed_s, load_after = time.perf_counter() - began, os.getloadavg()[0]
        if valgrind:
            began = time.perf_counter()
            everything = [*runners.values(), start_off, start_on]
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                jobs = [
                    pool.submit(r.callgrind, root / f"cg{n}", args.seed)
                    for n, r in enumerate(everything)
                ]
                for job in jobs:
                    job.result()  # re-raises a failed run's SystemExit here
            valgrind_s = time.perf_counter() - began

    rows = []
    for label, off_argv, on_argv in pairs:
        off, on = runners[tuple(off_argv)], runners[tuple(on_argv)]
        rows.append(
            (
                f"{label}: wall, median / best",
                f"{statistics.median(off.wall):.2f} / {min(off.wall):.2f} s",
                f"{statistics.median(on.wall):.2f} / {min(on.wall):.2f} s",
                f"{pct(statistics.median(off.wall), statistics.median(on.wall)):+.1f} / "
                f"{pct(min(off.wall), min(on.wall)):+.1f} %",
            )
        )
        rows.append(
            (
                f"{label}: CPU, median",
                f"{statistics.median(off.cpu):.2f} s",
                f"{statistics.median(on.cpu):.2f} s",
                f"{pct(statistics.median(off.cpu), statistics.median(on.cpu)):+.1f} %",
            )
        )
        if off.instructions and on.instructions:
            rows.append(
                (
                    f"{label}: instructions",
                    f"{off.instructions[0] / 1e6:,.0f} M",
                    f"{on.instructions[0] / 1e6:,.0f} M",
                    f"{pct(off.instructions[0], on.instructions[0]):+.1f} % (all files: "
                    f"{pct(off.instructions[1], on.instructions[1]):+.1f} %)",
                )
            )
    rows.append(
        (
            "start-up (`--collect-only`, empty suite): wall, median / best",
            f"{statistics.median(start_off.wall) * 1000:.0f} / {min(start_off.wall) * 1000:.0f} ms",
            f"{statistics.median(start_on.wall) * 1000:.0f} / {min(start_on.wall) * 1000:.0f} ms",
            f"{(statistics.median(start_on.wall) - statistics.median(start_off.wall)) * 1000:+.0f} / "
            f"{(min(start_on.wall) - min(start_off.wall)) * 1000:+.0f} ms",
        )
    )
    if start_off.instructions and start_on.instructions:
        rows.append(
            (
                "start-up: instructions",
                f"{start_off.instructions[0] / 1e6:,.0f} M",
                f"{start_on.instructions[0] / 1e6:,.0f} M",
                f"{(start_on.instructions[0] - start_off.instructions[0]) / 1e6:+,.0f} M",
            )
        )
    print("| measure | `-p no:promotion` | plugin | added |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    print()
    off, on = runners[tuple(OFF)], runners[tuple(ON)]
    wall = pct(statistics.median(off.wall), statistics.median(on.wall))
    print(
        f"goal: {gates} with --env=staging <= {GOAL_PCT:g} % (wall, median): {wall:+.1f} %, {verdict(wall <= GOAL_PCT)}"
    )
    if on.instructions and off.instructions and start_on.instructions and start_off.instructions:
        instr = pct(off.instructions[0], on.instructions[0])
        print(f"      the same in instructions: {instr:+.1f} %, {verdict(instr <= GOAL_PCT)}")
        fixed = start_on.instructions[0] - start_off.instructions[0]
        print(
            f"      pytest: {off.instructions[0] / args.gates / 1e6:.2f} M instructions a gate "
            f"(start-up included); the plugin: about {fixed / 1e6:,.0f} M at start-up, plus"
        )
        for label, off_argv, on_argv in pairs:
            a, b = runners[tuple(off_argv)].instructions, runners[tuple(on_argv)].instructions
            if a and b:
                per_gate = (b[0] - a[0] - fixed) / args.gates
                print(f"      {per_gate / 1e3:,.0f} k a gate: {label}")
    added_ms = (statistics.median(start_on.wall) - statistics.median(start_off.wall)) * 1000
    print(
        f"goal: start-up <= {GOAL_STARTUP_MS:g} ms added (wall, median): {added_ms:+.0f} ms, "
        f"{verdict(added_ms <= GOAL_STARTUP_MS)}"
    )
    mode = (
        "PYTHONDONTWRITEBYTECODE=1, compiled every run" if args.no_bytecode else "bytecode cached"
    )
    print(
        f"\n{args.runs} interleaved runs per variant ({2 * args.runs} for start-up), {mode}; "
        f"Python {sys.version.split()[0]}; load average {load_before:.2f} at start, "
        f"{load_after:.2f} after the timed runs ({timed_s:.0f} s)"
        + (
            f"; callgrind {valgrind_s:.0f} s"
            if valgrind
            else "; no valgrind: no instruction counts"
        )
    )


if __name__ == "__main__":
    main()
