"""Benchmark: what the plugin costs a gate run.

1. A suite of 2,000 trivial passing gates, run with ``--env=staging`` and with
   ``-p no:promotion`` (the same tests, plugin switched off): wall time, median of 5.
2. Start-up: ``--collect-only`` on an empty suite, with the plugin active (``--env``)
   and switched off: wall time, median of 10.

Goals (issue 2): overhead <= 5 % on the 2,000 gates, <= 80 ms added at start-up.
Run: ``make bench`` (or ``.venv/bin/python bench/core_overhead.py``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GATES = 2000
SUITE = """
import pytest

pytestmark = pytest.mark.dev

@pytest.mark.parametrize("n", range({n}))
def test_gate(n):
    assert n >= 0
"""


def wall(argv: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 5):
            sys.exit(f"{argv} failed with {proc.returncode}:\n{proc.stdout.decode()[-2000:]}")
    return statistics.median(times)


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

        wall(pytest + ["--env=staging"], suite, 1)  # warm the file system and .pyc caches
        off = wall(pytest + ["-p", "no:promotion"], suite, 5)
        on = wall(pytest + ["--env=staging", "--promotion-report=d.json"], suite, 5)
        start_off = wall(pytest + ["--collect-only", "-p", "no:promotion"], empty, 10)
        start_on = wall(pytest + ["--collect-only", "--env=staging"], empty, 10)

    overhead = (on - off) / off * 100
    added_ms = (start_on - start_off) * 1000
    print(f"{'measure':44} {'value':>10}  goal")
    print(f"{'2,000 gates, plugin off (median of 5)':44} {off:>9.2f}s")
    print(f"{'2,000 gates, --env=staging (median of 5)':44} {on:>9.2f}s")
    print(f"{'overhead on 2,000 gates':44} {overhead:>9.1f}%  <= 5 %")
    print(f"{'start-up, plugin off (median of 10)':44} {start_off * 1000:>8.0f}ms")
    print(f"{'start-up, --env=staging (median of 10)':44} {start_on * 1000:>8.0f}ms")
    print(f"{'start-up added by the plugin':44} {added_ms:>8.0f}ms  <= 80 ms")


if __name__ == "__main__":
    main()
