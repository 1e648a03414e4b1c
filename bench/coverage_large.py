"""Benchmark: the `coverage` check on a 100 MB Cobertura report (issue 5: <= 3 s, <= 150 MB).

Generates a Cobertura XML of about 100 MB (20,000 classes of 165 lines, 60 % hit), then
runs the check in a fresh process and reads its wall time and peak RSS (ru_maxrss of that
process alone). Median of 3. Run: ``make bench`` or ``python bench/coverage_large.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES, LINES = 20_000, 165
PROBE = """
import json, resource, sys, time
from pathlib import Path
from pytest_promotion.checks import kind_module
from pytest_promotion.checks.base import Target
start = time.perf_counter()
spec = {"coverage": sys.argv[1], "min": 60, "max_age": "1d"}
if sys.argv[3] == "paths":
    spec["paths"] = {"pkg0": 50}
outcome = kind_module("coverage").run(spec, Target(env="bench", rootdir=Path(sys.argv[2])))
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": elapsed, "mib": peak, "passed": outcome.passed, "measured": outcome.measured,
                  "message": outcome.message}))
"""


def generate(path: Path) -> None:
    hits = [("1" if (n * 7) % 10 < 6 else "0") for n in range(LINES)]
    with path.open("w", encoding="utf-8") as f:
        total = CLASSES * LINES
        covered = CLASSES * hits.count("1")
        f.write(
            f'<?xml version="1.0" ?>\n<coverage version="7.4" line-rate="{covered / total:.4f}" '
            f'lines-valid="{total}" lines-covered="{covered}" timestamp="0">\n'
            "<sources><source>/nonexistent/src</source></sources>\n<packages>\n"
        )
        for c in range(CLASSES):
            if c % 100 == 0:
                if c:
                    f.write("</classes></package>\n")
                f.write(f'<package name="pkg{c // 100}" line-rate="0.6"><classes>\n')
            f.write(
                f'<class name="m{c}.py" filename="pkg{c // 100}/m{c}.py" line-rate="0.6"><methods/><lines>\n'
            )
            f.writelines(f'<line number="{n + 1}" hits="{h}"/>\n' for n, h in enumerate(hits))
            f.write("</lines></class>\n")
        f.write("</classes></package>\n</packages>\n</coverage>\n")


def main() -> None:
    labels = {
        "total": "`min` only (root totals, checked against the lines counted per class)",
        "paths": "with per-path minimums (lines counted per class)",
    }
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp, "coverage.xml")
        generate(report)
        size = report.stat().st_size / 1024 / 1024
        for mode in labels:
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                argv = [sys.executable, "-c", PROBE, str(report), tmp, mode]
                out = subprocess.run(argv, capture_output=True, text=True, check=True)
                data = json.loads(out.stdout)
                data["process_s"] = time.perf_counter() - t
                runs.append(data)
            results[mode] = runs
    print(
        f"Cobertura report: {size:.0f} MB, {CLASSES * LINES:,} lines: {results['total'][0]['message']}"
    )
    print("| coverage check (median of 3) | check time | whole process | peak RSS | goal |")
    print("|---|---:|---:|---:|---|")
    for mode, runs in results.items():
        check_s = statistics.median(r["s"] for r in runs)
        process_s = statistics.median(r["process_s"] for r in runs)
        mib = statistics.median(r["mib"] for r in runs)
        print(
            f"| {labels[mode]} | {check_s:.2f} s | {process_s:.2f} s | {mib:.0f} MiB | <= 3 s, <= 150 MB |"
        )


if __name__ == "__main__":
    main()
