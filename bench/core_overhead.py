"""Benchmark: what the plugin costs a gate run.

1. A suite of 2,000 trivial passing gates, run with ``--env=staging`` and with
   ``-p no:promotion`` (the same tests, plugin switched off): wall time, median of 5.
2. Start-up: ``--collect-only`` on an empty suite, with the plugin active (``--env``)
   and switched off: wall time, median of 10.

Each pair of variants runs alternately, so drift in the machine's load hits both alike.
Goals (issue 2): overhead <= 5 % on the 2,000 gates, <= 80 ms added at start-up.
Run: ``make bench`` (or ``.venv/bin/python bench/core_overhead.py``).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GATES = 2000
RUNS = 11
SUITE = """
import pytest

pytestmark = pytest.mark.dev

@pytest.mark.parametrize("n", range({n}))
def test_gate(n):
    assert n >= 0
"""


# A package installed by pip has its bytecode compiled; this checkout is an editable install
# and some environments (this machine's among them) set PYTHONDONTWRITEBYTECODE, which makes
# every run compile the plugin from source (and pytest re-run its assertion rewriting).
# BYTECODE=1 (the default) measures the installed case; BYTECODE=0 the other.
BYTECODE = os.environ.get("BYTECODE", "1") == "1"
CHILD_ENV = {
    k: v for k, v in os.environ.items() if not (BYTECODE and k == "PYTHONDONTWRITEBYTECODE")
}


def once(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU user+sys) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, check=False, env=CHILD_ENV)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # 0: promoted; 1: --collect-only never promotes (nothing ran), as designed.
    if proc.returncode not in (0, 1, 5):
        sys.exit(f"{argv} failed with {proc.returncode}:\n{proc.stdout.decode()[-2000:]}")
    return elapsed, cpu


class Figures:
    """Wall and CPU times of repeated runs of one command."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, sample: tuple[float, float]) -> None:
        self.wall.append(sample[0])
        self.cpu.append(sample[1])

    def median(self) -> float:
        return statistics.median(self.wall)

    def best(self) -> float:
        return min(self.wall)

    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def paired(a: list[str], b: list[str], cwd: Path, runs: int) -> tuple[Figures, Figures]:
    """Figures of a and b, run alternately so that drift in the machine's load hits both."""
    fa, fb = Figures(), Figures()
    for _ in range(runs):
        fa.add(once(a, cwd))
        fb.add(once(b, cwd))
    return fa, fb


def main() -> None:
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        suite = root / "suite"
        suite.mkdir()
        (suite / "test_gates.py").write_text(SUITE.format(n=GATES))
        (suite / "pytest.ini").write_text("[pytest]\n")
        empty = root / "empty"
        empty.mkdir()
        (empty / "pytest.ini").write_text("[pytest]\n")

        once(pytest + ["--env=staging"], suite)  # warm the file system and .pyc caches
        once(pytest + ["-p", "no:promotion"], suite)
        off, on = paired(
            pytest + ["-p", "no:promotion"],
            pytest + ["--env=staging", "--promotion-report=d.json"],
            suite,
            RUNS,
        )
        start_off, start_on = paired(
            pytest + ["--collect-only", "-p", "no:promotion"],
            pytest + ["--collect-only", "--env=staging"],
            empty,
            2 * RUNS,
        )

    def pct(a: float, b: float) -> str:
        return f"{(b - a) / a * 100:+.1f} %"

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = [
        (
            "2,000 gates: -p no:promotion",
            f"{off.median():.2f} s",
            f"{off.best():.2f} s",
            f"{off.cpu_median():.2f} s",
        ),
        (
            "2,000 gates: --env=staging",
            f"{on.median():.2f} s",
            f"{on.best():.2f} s",
            f"{on.cpu_median():.2f} s",
        ),
        (
            "overhead (goal <= 5 %)",
            pct(off.median(), on.median()),
            pct(off.best(), on.best()),
            pct(off.cpu_median(), on.cpu_median()),
        ),
        (
            "start-up: -p no:promotion",
            f"{start_off.median() * 1000:.0f} ms",
            f"{start_off.best() * 1000:.0f} ms",
            f"{start_off.cpu_median() * 1000:.0f} ms",
        ),
        (
            "start-up: --env=staging",
            f"{start_on.median() * 1000:.0f} ms",
            f"{start_on.best() * 1000:.0f} ms",
            f"{start_on.cpu_median() * 1000:.0f} ms",
        ),
        (
            "start-up added (goal <= 80 ms)",
            f"{(start_on.median() - start_off.median()) * 1000:+.0f} ms",
            f"{(start_on.best() - start_off.best()) * 1000:+.0f} ms",
            f"{(start_on.cpu_median() - start_off.cpu_median()) * 1000:+.0f} ms",
        ),
    ]
    mode = (
        "bytecode cached, as installed"
        if BYTECODE
        else "PYTHONDONTWRITEBYTECODE=1: compiled every run"
    )
    print(
        f"{RUNS} alternating runs per pair ({2 * RUNS} for start-up), {mode}; load average now {load}"
    )
    print("| measure | wall, median | wall, best | CPU, median |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
