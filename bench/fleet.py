"""Benchmark: one fleet check over 200, 2,000 and 10,000 targets, 10 % hanging (issue 15).

The target server is bench/probes.py's (``probes.py --serve``: asyncio, its own process,
127.0.0.1 only): ``/ok/...`` answers 200 ``{"status": "ok"}``, ``/hang/...`` reads the
request and never answers. Target ``i`` is the base URL ``http://127.0.0.1:PORT/ok/i``
(``/hang/i`` for every tenth), and the check's path ``/health`` is appended to it. Each
size runs three ways, side by side in one invocation, timeout 2 s:

(a) this plugin: ``pytest --env=bench``, one ``http`` check with ``targets_file`` and
    ``min_healthy = "80%"`` (default concurrency: 1,024 on the event loop); whole process;
(d) Prometheus blackbox_exporter (already started), asked for every ``/probe`` at once
    (one thread per target up to 2,000; beyond, 2,000 threads take them in turn): from
    the first request to the last answer, no start-up;
(e) the floor: pytest alone, one test sleeping 2 s.

Every run is verified: the plugin's JSON report must name every hanging target unhealthy
(and promote at ``min_healthy = "80%"``), the exporter must say probe_success 0 for each
of them; healthy targets that failed anyway (the target server or the machine too loaded
to answer within 2 s) are counted in their own column. Wall time, CPU time and peak RSS
(the plugin's: ``wait4`` of the pytest process; the exporter's: its VmHWM), and the CPU
the target server used while the plugin ran (it shares the machine's cores: on a loaded
machine the wall times say more about the load than about the tools; CPU less so).

Run: ``.venv/bin/python bench/fleet.py [--sizes 200,2000,10000] [--runs 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import probes  # bench/probes.py: its target server and its measuring wrapper

TIMEOUT = probes.TIMEOUT
HOST = probes.HOST
EXPORTER_THREADS = 2000


def hanging(i: int) -> bool:
    return i % 10 == 9


def base_url(port: int, i: int) -> str:
    return f"http://{HOST}:{port}/{'hang' if hanging(i) else 'ok'}/{i:05d}"


def cpu_of(pid: int) -> float:
    """user + system seconds a running process has used (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_plugin(
    root: Path, port: int, size: int, env: dict[str, str], concurrency: int | None = None
) -> tuple[float, int, float, int]:
    strict = concurrency is None
    work = root / f"a{size}-{concurrency}"
    work.mkdir(parents=True)
    knob = f"concurrency = {concurrency}" if concurrency else ""
    (work / "pytest.ini").write_text("[pytest]\n")
    (work / "agents.txt").write_text("\n".join(base_url(port, i) for i in range(size)) + "\n")
    (work / "promotion.toml").write_text(
        f"""[promotion]
environments = ["bench"]
{knob}

[environments.bench]
timeout = {TIMEOUT:g}

[[environments.bench.checks]]
name = "agents"
http = "/health"
targets_file = "agents.txt"
min_healthy = "80%"
expect_json = {{ status = "ok" }}
"""
    )
    argv = [*probes.PYTEST, "--env=bench", "--promotion-report=d.json"]
    wall, max_rss, _tree, code, output, cpu = probes.measure(argv, work, env)
    report = json.loads((work / "d.json").read_text()) if (work / "d.json").exists() else {}
    gates = report.get("gates", [{}])
    unhealthy = {t["target"] for t in gates[0].get("targets", []) if not t["healthy"]}
    expected = {base_url(port, i) for i in range(size) if hanging(i)}
    # the second row may overwhelm the target server: its healthy targets that failed are
    # counted, not fatal; the default row must promote
    promoted = code == 0 and report.get("decision") == "promote"
    if not gates[0].get("targets") or not expected <= unhealthy or (not promoted and strict):
        sys.exit(f"plugin, {size} targets: broken run (exit {code}):\n{output[-3000:]}")
    return wall, max_rss, cpu, len(unhealthy - expected)


def run_floor(root: Path, env: dict[str, str]) -> tuple[float, int]:
    work = root / "floor"
    work.mkdir(exist_ok=True)
    (work / "pytest.ini").write_text("[pytest]\n")
    (work / "test_floor.py").write_text(probes.FLOOR.format(timeout=f"{TIMEOUT:g}"))
    wall, max_rss, _tree, code, output, _cpu = probes.measure(
        [*probes.PYTEST, "-p", "no:promotion"], work, env
    )
    if code != 0:
        sys.exit(f"floor: broken run (exit {code}):\n{output[-2000:]}")
    return wall, max_rss


def start_exporter(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    config = root / "blackbox.yml"
    config.write_text(probes.EXPORTER_CONFIG)
    port = probes.free_port()
    proc = subprocess.Popen(
        [
            probes.EXPORTER,
            f"--config.file={config}",
            f"--web.listen-address={HOST}:{port}",
            "--log.level=warn",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if probes._get(port, "/-/healthy", 1.0)[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.01)
    probes._stop(proc)
    sys.exit("blackbox_exporter did not start")


def run_exporter(exporter: int, pid: int, target_port: int, size: int) -> tuple[float, int, int]:
    failing: set[int] = set()
    lock = threading.Lock()

    def probe(i: int) -> None:
        target = base_url(target_port, i) + "/health"
        status, body = probes._get(exporter, f"/probe?module=http_ok&target={target}", 60.0)
        success = re.search(r"^probe_success (\S+)$", body, re.M)
        if status != 200 or not success:
            raise RuntimeError(f"/probe {target}: {status} {body[:200]!r}")
        if float(success.group(1)) != 1:
            with lock:
                failing.add(i)

    start = time.perf_counter()
    with ThreadPoolExecutor(min(size, EXPORTER_THREADS)) as pool:
        list(pool.map(probe, range(size)))
    wall = time.perf_counter() - start
    expected = {i for i in range(size) if hanging(i)}
    if not expected <= failing:
        sys.exit(f"exporter, {size} targets: {len(expected - failing)} hanging ones succeeded")
    with open(f"/proc/{pid}/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return wall, hwm, len(failing - expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000,10000")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--also-concurrency",
        type=int,
        default=4096,
        help="a second plugin row with this [promotion] concurrency (0: none)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not os.path.exists(probes.EXPORTER):
        sys.exit(f"{probes.EXPORTER} not found (apt-get install prometheus-blackbox-exporter)")
    with open("/proc/loadavg") as f:
        print(f"load average before: {' '.join(f.read().split()[:3])}")
    server = probes.TargetServer()
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    env = probes.child_env(str(root / "pycache"))
    exporter, exporter_port = start_exporter(root, env)
    rows = []
    try:
        # warm-up: the bytecode of pytest, the plugin and aiohttp compiled into the cache
        run_floor(root, env)
        run_plugin(root / "warm-up", server.port, 20, env)
        for size in sizes:
            plugin, wide, floor, black = [], [], [], []
            served: list[float] = []  # the target server's CPU during the plugin's runs
            for n in range(args.runs):
                before = cpu_of(server.proc.pid)
                plugin.append(run_plugin(root / f"r{n}", server.port, size, env))
                served.append(cpu_of(server.proc.pid) - before)
                if args.also_concurrency:
                    wide.append(
                        run_plugin(root / f"r{n}", server.port, size, env, args.also_concurrency)
                    )
                black.append(run_exporter(exporter_port, exporter.pid, server.port, size))
                floor.append(run_floor(root, env))
            e_wall = statistics.median(w for w, _r in floor)
            d_wall = statistics.median(d[0] for d in black)
            d_rss = max(d[1] for d in black) / 1024
            d_extra = max(d[2] for d in black)
            for label, runs in (("1,024 (default)", plugin), (str(args.also_concurrency), wide)):
                if not runs:
                    continue
                p_wall = statistics.median(p[0] for p in runs)
                p_rss = max(p[1] for p in runs) / 1024
                p_cpu = statistics.median(p[2] for p in runs)
                p_extra = max(p[3] for p in runs)
                s_cpu = f"{statistics.median(served):.2f} s" if runs is plugin else "-"
                rows.append(
                    f"| {size:,} ({size // 10:,}) | {label} | {p_wall:.2f} s | {p_cpu:.2f} s "
                    f"| {s_cpu} "
                    f"| {p_rss:.0f} MiB | {p_extra} | {d_wall:.2f} s | {d_rss:.0f} MiB "
                    f"| {d_extra} | {e_wall:.2f} s | {p_wall - e_wall:+.2f} s |"
                )
                print(rows[-1], flush=True)
    finally:
        probes._stop(exporter)
        server.stop()
    with open("/proc/loadavg") as f:
        print(f"load average after: {' '.join(f.read().split()[:3])}")
    print()
    print(
        "| targets (hanging) | plugin concurrency | plugin wall | plugin CPU | target server CPU "
        "| plugin peak RSS | plugin: healthy "
        "targets failed | blackbox_exporter wall (no start-up) | exporter peak RSS | "
        "exporter: healthy targets failed | floor: pytest sleeping 2 s | plugin - floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
