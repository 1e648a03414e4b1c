"""What the promotion ledger costs, and whether it holds under concurrency (issue 12).

    .venv/bin/python bench/ledger.py                  # SQLite, and PostgreSQL when installed
    .venv/bin/python bench/ledger.py --records 20000  # a quicker look
    .venv/bin/python bench/ledger.py --postgres URL   # an existing server instead of a private one

1. The ledger's cost per run: the work the ledger plugin adds to a gate run, done by the
   same functions in this process (open and migrate the store, take and release the lease,
   read the last-known-good version, write the record with every gate), median of
   ``--repeat`` runs, for 200 and 1,200 gates; the cost per additional gate is the
   difference divided by 1,000. Goals: <= 30 ms (SQLite) and <= 100 ms (PostgreSQL) for
   200 gates, <= 10 us per additional gate. ``git describe`` + ``git rev-parse`` (run once
   per run when the config is in a git repository) are timed apart.
2. ``promotion history`` and ``promotion status`` on a ledger of ``--records`` (100,000)
   records over 5 environments (goal: <= 1 s each), through the command's own ``main``.
3. 20 concurrent runs over 5 environments on PostgreSQL (separate processes): every
   record written, none lost, no deadlock, and no two runs holding one environment's
   lease at once (their holding intervals, on the ledger's clock, do not overlap).

Wall-clock figures on a shared machine are noisy: medians, and the table says the load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_promotion.cli import main as promotion_main
from pytest_promotion.decision import GateRecord
from pytest_promotion.ledger import open_store
from pytest_promotion.ledger.identity import git_facts
from pytest_promotion.ledger.lease import Lease
from pytest_promotion.ledger.model import Record
from pytest_promotion.ledger.queries import last_known_good_in
from pytest_promotion.ledger.store import LeaseInfo

ENVS = ("dev", "qa", "staging", "perf", "prod")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def one_run(url: str, base: Path, gates: int, env: str = "staging") -> tuple[float, float]:
    """The ledger's share of one gate run: (wall, CPU of this process) in seconds. The gate
    records exist in any run; turning them into the ledger's record is the ledger's work."""
    records = [GateRecord(id=f"test_x.py::test_{i}", name=f"test_{i}", outcome="passed",
                          measured="12.5", threshold="<= 500 ms", duration=0.001) for i in range(gates)]  # fmt: skip
    start, cpu = time.perf_counter(), time.process_time()
    store = open_store(url, base)
    lease = Lease(store, LeaseInfo.mine(env, os.urandom(8).hex(), "bench", "v1.0.0", None), None)
    assert lease.acquire(10, lambda line: None) is None
    last_known_good_in(store, env, exclude="v1.0.0")
    record = Record(kind="decision", environment=env, version="v1.0.0", decision="promote",
                    actor="bench", body={"gates": [{**g.to_json(), "policy": False} for g in records],
                                         "reasons": [], "config_hash": "sha256:0"})  # fmt: skip
    store.append([record])
    lease.release()
    store.close()
    return time.perf_counter() - start, time.process_time() - cpu


def median_ms(fn: Callable[[], tuple[float, float]], repeat: int) -> tuple[float, float]:
    fn()  # warm-up: imports, the schema created
    runs = [fn() for _ in range(repeat)]
    return (
        statistics.median(w for w, _ in runs) * 1000,
        statistics.median(c for _, c in runs) * 1000,
    )


def cost(url: str, base: Path, repeat: int) -> dict[str, float]:
    (small, small_cpu), (large, large_cpu) = (
        median_ms(lambda: one_run(url, base, 200), repeat),
        median_ms(lambda: one_run(url, base, 1200), repeat),
    )
    return {"wall": small, "cpu": small_cpu, "wall_large": large,
            "per_gate_wall": (large - small), "per_gate_cpu": (large_cpu - small_cpu)}  # fmt: skip


def end_to_end(runs: int) -> tuple[float, float]:
    """Median wall of ``pytest --env=dev`` on 200 trivial gates, ledger on (SQLite) and off,
    interleaved: (with, without) in ms. Includes imports, git and the lease."""
    work = Path(tempfile.mkdtemp(prefix="ledger-e2e-"))
    (work / "test_gates.py").write_text(
        "import pytest\npytestmark = pytest.mark.dev\n"
        "@pytest.mark.parametrize('i', range(200))\ndef test_gate(i):\n    pass\n"
    )
    on, off = work / "on", work / "off"
    for d, ledger in ((on, ""), (off, "ledger = false\n")):
        d.mkdir()
        shutil.copy(work / "test_gates.py", d)
        (d / "promotion.toml").write_text(f"[promotion]\n{ledger}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOTION_")}
    times: dict[Path, list[float]] = {on: [], off: []}
    try:
        for i in range(runs + 1):
            for d in (on, off):
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                       "--env=dev", f"--promotion-version=v1.{i}.0"],
                                      cwd=d, env=env, capture_output=True, text=True, check=False)  # fmt: skip
                assert done.returncode == 0 and "200 passed" in done.stdout, done.stdout[-500:]
                if i:  # the first round warms the caches
                    times[d].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return statistics.median(times[on]) * 1000, statistics.median(times[off]) * 1000


def fill(url: str, base: Path, count: int) -> None:
    store = open_store(url, base)
    batch = []
    for i in range(count):
        env = ENVS[i % len(ENVS)]
        version = f"v1.{i // 50}.{i % 50}"
        decision = "promote" if i % 7 else "block"
        gates = [{"id": f"{env}::g{j}", "outcome": "passed", "policy": False} for j in range(5)]
        batch.append(Record(kind="decision", environment=env, version=version, decision=decision,
                            actor="bench", body={"gates": gates, "reasons": []}))  # fmt: skip
        if len(batch) == 5000:
            store.append(batch)
            batch = []
    if batch:
        store.append(batch)
    store.close()


def cli_seconds(argv: list[str], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        out = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = promotion_main(argv)
        times.append(time.perf_counter() - start)
        assert code == 0, argv
    return statistics.median(times)


def commands(url: str, base: Path) -> dict[str, float]:
    (base / "promotion.toml").write_text(
        f'[promotion]\nenvironments = {list(ENVS)!r}\nledger = "{url}"\n'.replace("'", '"')
        + '\n[[environments.prod.checks]]\nname = "after-perf"\nrequires_previous = true\nsoak = "24h"\n'
    )
    common = ["--rootdir", str(base)]
    return {
        "history --limit 50": cli_seconds(["history", "--limit", "50", *common]),
        "history --env prod --limit 50": cli_seconds(
            ["history", "--env", "prod", "--limit", "50", *common]
        ),
        "status": cli_seconds(["status", *common]),
    }


WORKER = """
import os, sys, time
from pathlib import Path
from pytest_promotion.ledger import open_store
from pytest_promotion.ledger.lease import Lease
from pytest_promotion.ledger.model import Record
from pytest_promotion.ledger.store import LeaseInfo
url, env, n = sys.argv[1], sys.argv[2], sys.argv[3]
store = open_store(url, Path("."))
lease = Lease(store, LeaseInfo.mine(env, os.urandom(8).hex(), f"run{n}", f"v{n}", None), None)
assert lease.acquire(300, lambda line: None) is None
held_from = store.now()
time.sleep(0.2)
held_to = store.now()
store.append([Record(kind="decision", environment=env, version=f"v{n}", decision="promote",
                     actor=f"run{n}", body={"held": [held_from, held_to]})])
lease.release()
"""


def concurrent(url: str, runs: int = 20) -> tuple[int, bool, float]:
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, ENVS[i % len(ENVS)], str(i)])
             for i in range(runs)]  # fmt: skip
    codes = [p.wait(timeout=600) for p in procs]
    elapsed = time.perf_counter() - start
    assert codes == [0] * runs, codes
    store = open_store(url, Path("."))
    records = [r for r in store.query(full=True) if str(r.actor).startswith("run")]
    store.close()
    exclusive = True
    for env in ENVS:
        spans = sorted(tuple(r.body["held"]) for r in records if r.environment == env)
        exclusive &= all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    return len(records), exclusive, elapsed


@contextlib.contextmanager
def private_postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL on a loopback port (trust auth, plaintext), or None."""
    if not (PG_BIN / "initdb").exists():
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    as_pg: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_pg = ["runuser", "-u", "postgres", "--"]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"

    def run(*argv: str) -> None:
        subprocess.run([*as_pg, *argv], check=True, capture_output=True, timeout=120)

    run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60", "start")  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def report(name: str, url: str, args: argparse.Namespace, goal_ms: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    try:
        c = cost(url, work, args.repeat)
        print(f"{name}: ledger cost per 200-gate run: wall {c['wall']:.1f} ms, CPU {c['cpu']:.1f} ms "
              f"(goal <= {goal_ms:g} ms); per additional gate: wall {c['per_gate_wall']:.1f} us, "
              f"CPU {c['per_gate_cpu']:.1f} us (goal <= 10 us)")  # fmt: skip
        # the per-run records above stay: a few hundred more in the big ledger
        fresh = url if url.startswith("postgresql") else f"sqlite:///{work}/big.sqlite3"
        start = time.perf_counter()
        fill(fresh, work, args.records)
        print(f"{name}: {args.records:,} records written in {time.perf_counter() - start:.1f} s")
        for command, seconds in commands(fresh, work).items():
            print(
                f"{name}: promotion {command} on {args.records:,} records: {seconds * 1000:.0f} ms (goal <= 1000)"
            )
        return c
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--e2e", type=int, default=11, help="rounds of whole pytest runs (0: none)")
    parser.add_argument("--postgres", help="an existing server's URL (default: a private one)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    start = time.perf_counter()
    git_facts(Path(__file__).parent)
    print(
        f"git describe + rev-parse (once per run in a repository): {(time.perf_counter() - start) * 1000:.1f} ms"
    )
    report("sqlite", "sqlite:///ledger.sqlite3", args, 30)
    if args.e2e:
        with_ledger, without = end_to_end(args.e2e)
        print(f"pytest --env=dev, 200 gates, median of {args.e2e}: {with_ledger:.0f} ms with the SQLite "
              f"ledger, {without:.0f} ms with ledger = false: {with_ledger - without:+.0f} ms (noisy)")  # fmt: skip
    with contextlib.ExitStack() as stack:
        url = args.postgres or stack.enter_context(private_postgres())
        if url is None:
            print("postgresql: no server (PostgreSQL 15 binaries not found): skipped")
            return 0
        report("postgresql", url, args, 100)
        found, exclusive, seconds = concurrent(url)
        print(f"postgresql: 20 concurrent runs over 5 environments: {found} of 20 records, "
              f"leases {'exclusive' if exclusive else 'OVERLAPPED'}, no deadlock, {seconds:.1f} s")  # fmt: skip
        return 0 if found == 20 and exclusive else 1


if __name__ == "__main__":
    sys.exit(main())
