"""What the watch window costs (issue 13, item 6).

    .venv/bin/python bench/watch.py                    # both parts (about 4 minutes)
    .venv/bin/python bench/watch.py --measurements 2000 --rounds 5   # a quicker look

1. **Cost per measurement** of 200 http checks against a loopback server (a separate
   process), side by side with the gate run's probe phase on the same 200 checks: the
   same ``probe_check`` of every declarative check on a ``ProbePool`` of the config's
   concurrency (64), which is what a gate run's early start does before pytest collects
   the outcomes. A measurement adds the classification, the relative criteria, the
   progress line and its record appended to a SQLite ledger. Wall and CPU (this
   process's ``time.process_time``), rounds interleaved, medians. Goal: a measurement
   costs no more than the probe phase (plus its one ledger write).
2. **Memory over 8,640 measurements** (a 24-hour window at a 10 s interval, run at
   ``--interval`` 0.01 s with ``--memory-checks`` 4 http checks): the resident set size
   and Python's traced heap sampled every 10 %. Goal: flat (measurements are streamed to
   the ledger, only the last 100 kept for the reports); every measurement in the ledger.

3. **A measurement's Python gates** (``@pytest.mark.gate(watch=True)``): ``--python-gates``
   gates, each one GET of the loopback server, run the way the watch runs them (a child
   pytest per measurement); wall and CPU of the child (``RUSAGE_CHILDREN``), medians of
   ``--python-rounds``. It is a pytest start-up: compare it with the interval.
   ``--only-python`` runs this part alone.

Wall-clock figures on a shared 2-core machine are noisy: medians of interleaved rounds,
and the table says the load average.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_promotion.checks.pool import ProbePool
from pytest_promotion.config import load_config
from pytest_promotion.items import probe_check
from pytest_promotion.ledger import open_store
from pytest_promotion.watch import WatchRequest, parse_settings, run_watch
from pytest_promotion.watch.journal import LedgerJournal
from pytest_promotion.watch.measure import measure, watched_checks
from pytest_promotion.watch.relative import Baselines


def serve(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    (directory / "health").write_text('{"status": "ok"}')
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import urllib.request

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the loopback server did not start")


def project(directory: Path, port: int, checks: int) -> Path:
    path = directory / f"p{checks}"
    path.mkdir()
    body = "".join(
        f'\n[[environments.staging.checks]]\nname = "c{i}"\n'
        f'http = "http://127.0.0.1:{port}/health"\nexpect_status = 200\n'
        for i in range(checks)
    )
    (path / "promotion.toml").write_text(
        '[promotion]\nenvironments = ["dev", "staging", "prod"]\n\n'
        f"[environments.staging]\ntimeout = 10\n{body}"
    )
    return path


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def cost(path: Path, rounds: int) -> dict[str, tuple[float, float]]:
    config = load_config(path)
    environment = config.environment("staging")
    watched = watched_checks(environment)
    store = open_store("sqlite:///.promotion/ledger.sqlite3", path)
    journal = LedgerJournal(store, "staging", "v1", None, "bench", path)
    target = environment.target()
    lines: list[str] = []

    def probe_phase() -> None:
        pool = ProbePool(config.concurrency)
        futures = [
            pool.submit(functools.partial(probe_check, c, environment)) for c in environment.checks
        ]
        assert all(f.result().passed for f in futures)
        pool.close()

    def measurement(write: bool = True) -> None:
        pool = ProbePool(config.concurrency)
        m = measure(watched, target, pool, Baselines(), 1, 1)
        assert m is not None  # None only when a stop abandons the Python gates' run
        assert m.state == "successful", m.gates[0].message
        if write:
            journal.measurement(m.to_json(), m.state)
        lines.append(m.state)
        pool.close()

    probe_phase()  # warm-up: imports, connections, the ledger file
    measurement()  #: imports, connections, the ledger file
    samples: dict[str, list[tuple[float, float]]] = {
        "probe phase": [], "measurement": [], "(no ledger)": []
    }  # fmt: skip
    for _ in range(rounds):
        samples["probe phase"].append(timed(probe_phase))
        samples["measurement"].append(timed(measurement))
        samples["(no ledger)"].append(timed(lambda: measurement(write=False)))
    store.close()
    return {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in samples.items()
    }


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(
    path: Path, measurements: int, interval: float, trace: bool
) -> tuple[list[tuple[int, float, float]], int, float]:
    config = load_config(path)
    settings = parse_settings(None, "bench", duration=measurements * interval, interval=interval)
    samples: list[tuple[int, float, float]] = []
    every = max(1, measurements // 10)
    if trace:
        tracemalloc.start()

    def progress(line: str) -> None:
        n = int(line.split("measurement ", 1)[1].split(" ", 1)[0])
        if n == 1 or n % every == 0:
            heap = tracemalloc.get_traced_memory()[0] / 2**20 if trace else float("nan")
            samples.append((n, rss_mib(), heap))

    request = WatchRequest(config=config, env="staging", settings=settings, version="v1",
                           actor="bench", environ={})  # fmt: skip
    start = time.perf_counter()
    result = run_watch(request, progress)
    elapsed = time.perf_counter() - start
    if trace:
        tracemalloc.stop()
    assert result.decision == "promote", result.reason
    store = open_store("sqlite:///.promotion/ledger.sqlite3", path)
    stored = len(store.query(kinds=["measurement"]))
    store.close()
    return samples, stored, elapsed


GATES = """
import urllib.request

import pytest

URL = {url!r}

{gates}
"""
ONE_GATE = """
@pytest.mark.staging
@pytest.mark.gate(watch=True)
def test_gate_{i}(gate):
    with urllib.request.urlopen(URL, timeout=10) as got:
        gate.measure(got.status, min=200, max=299)
"""


def python_cost(directory: Path, port: int, gates: int, rounds: int) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one measurement's Python gates, medians."""
    import resource

    from pytest_promotion.watch.pygates import PythonGates, standalone_call

    directory.mkdir(exist_ok=True)
    path = project(directory, port, 1)
    body = "".join(ONE_GATE.format(i=i) for i in range(gates))
    (path / "test_gates.py").write_text(
        GATES.format(url=f"http://127.0.0.1:{port}/health", gates=body)
    )
    config = load_config(path)
    python = PythonGates(standalone_call(path, config.path), "staging", version="v1",
                         previous_version=None, timeout=120, secrets=())  # fmt: skip
    python.discover()
    assert python.found is not None and len(python.found) == gates, python.problem
    walls, cpus = [], []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        results = python.measure(python.begin())
        walls.append(time.perf_counter() - wall)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        assert results and all(r.state == "successful" for r in results), results
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--measurements", type=int, default=8640)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--memory-checks", type=int, default=4)
    parser.add_argument("--no-tracemalloc", action="store_true", help="RSS alone (no heap)")
    parser.add_argument("--python-gates", type=int, default=5)
    parser.add_argument("--python-rounds", type=int, default=5)
    parser.add_argument("--only-python", action="store_true", help="part 3 alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, port = serve(Path(tmp))
        try:
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            wall, cpu = python_cost(Path(tmp) / "python", port, args.python_gates,
                                    args.python_rounds)  # fmt: skip
            print(f"\n3. {args.python_gates} watched Python gates, one measurement (a child "
                  f"pytest), medians of {args.python_rounds}: wall {wall * 1000:.0f} ms, "
                  f"cpu {cpu * 1000:.0f} ms")  # fmt: skip
            if args.only_python:
                return 0
            figures = cost(project(Path(tmp), port, args.checks), args.rounds)
            print(f"\n1. {args.checks} http checks, medians of {args.rounds} interleaved rounds")
            print(f"{'':14}{'wall ms':>10}{'cpu ms':>10}")
            for name, (wall, cpu) in figures.items():
                print(f"{name:14}{wall * 1000:10.1f}{cpu * 1000:10.1f}")
            ratio = figures["measurement"][1] / figures["probe phase"][1]
            print(f"measurement / probe phase (cpu): {ratio:.2f}")
            samples, stored, elapsed = memory(
                project(Path(tmp), port, args.memory_checks),
                args.measurements,
                args.interval,
                not args.no_tracemalloc,
            )
            print(f"\n2. {args.measurements} measurements of {args.memory_checks} checks every "
                  f"{args.interval:g} s ({elapsed:.0f} s)")  # fmt: skip
            print(f"{'measurement':>12}{'RSS MiB':>10}{'heap MiB':>10}")
            for n, rss, heap in samples:
                print(f"{n:12}{rss:10.1f}{heap:10.2f}")
            first, last = samples[1] if len(samples) > 1 else samples[0], samples[-1]
            print(f"growth from 10 % to 100 %: RSS {last[1] - first[1]:+.1f} MiB, "
                  f"heap {last[2] - first[2]:+.2f} MiB; measurements in the ledger: {stored}")  # fmt: skip
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
