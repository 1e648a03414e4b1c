"""benchmark: pytest-benchmark storage recorded from real runs, one real run read and
compared, Go -bench output samples.

No verdict here depends on the machine's speed: the comparisons read runs recorded once
(tests/data/benchmark, see its README), and the one real run is compared with a baseline
100 times slower by construction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_promotion.checks import CheckConfigError, benchmark
from pytest_promotion.checks.base import Outcome, Target

from .conftest import DATA, python, write

WHERE = "promotion.toml: [[environments.staging.checks]] 'perf'"
# The suite the recorded runs come from; PARSE_SLEEP slows test_parse down.
SUITE = """
import os
import time

PARSE_SLEEP = float(os.environ.get("PARSE_SLEEP") or 0)
SLEEP = float(os.environ.get("SLEEP") or 0.001)


def parse():
    if PARSE_SLEEP:
        time.sleep(PARSE_SLEEP)
    return sum(range(100))


def test_parse(benchmark):
    benchmark(parse)


def test_sleep(benchmark):
    benchmark(time.sleep, SLEEP)
"""
RECORDED = DATA / "benchmark"
# The two recorded runs: 0002 is 0001 with test_parse slowed from 0.85 us to 2.11 ms.
FIRST = "0001_unversioned_20261203_102223.json"
SECOND = "0002_unversioned_20261203_102225.json"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose .benchmarks holds the two recorded runs, 0001 and 0002."""
    shutil.copytree(RECORDED / "storage", tmp_path / ".benchmarks")
    return tmp_path


def check(root: Path, **spec: object) -> Outcome:
    spec.setdefault("benchmark", ".benchmarks")
    benchmark.validate(spec, WHERE)
    return benchmark.run(spec, Target(env="staging", rootdir=root))


def runs(root: Path) -> list[Path]:
    return sorted((root / ".benchmarks").glob("*/*.json"))


@pytest.mark.integration
def test_a_real_run_is_read_and_compared(tmp_path: Path) -> None:
    """pytest-benchmark itself writes the current run: what the kind reads is what the tool
    saves. Its baseline is 100 times slower, so it passes on any machine however loaded."""
    write(tmp_path, {"bench/test_bench.py": SUITE})
    python(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "bench",
        "--benchmark-autosave", "--benchmark-storage=.benchmarks",
        "--benchmark-max-time=0.02", "--benchmark-min-rounds=5", "--benchmark-warmup=off",
        cwd=tmp_path,
        env={"PARSE_SLEEP": "", "SLEEP": ""},
    )  # fmt: skip
    (current,) = runs(tmp_path)
    assert current.name.startswith("0001_")
    shutil.copy(RECORDED / "slow-baseline.json", tmp_path / "slow-baseline.json")
    outcome = check(tmp_path, baseline="slow-baseline.json")
    assert outcome.passed, outcome.message
    assert outcome.message.startswith("2 benchmark(s) within limit, worst ")
    assert set(outcome.details["changes"]) == {"test_parse", "test_sleep"}
    first = check(tmp_path)  # the only run, with no baseline saved before it
    assert not first.passed
    assert first.message.startswith(f"no run saved before {current.name} in ")


def test_a_regression_is_a_rollback(project: Path) -> None:
    assert [p.name for p in runs(project)] == [FIRST, SECOND]
    outcome = check(project)
    assert not outcome.passed
    assert outcome.rollback is True
    assert benchmark.ROLLBACK is True
    assert outcome.threshold == "median <= +50 %"
    assert outcome.message == (
        f"test_parse: median 2.11 ms vs 849.80 ns (+248182% > +50%) ({SECOND} vs {FIRST})"
    )
    assert outcome.measured == "+248182%"


def test_only_unchanged_benchmarks_pass(project: Path) -> None:
    outcome = check(project, benchmarks=["test_sleep"])
    assert outcome.passed, outcome.message
    assert outcome.message.startswith("1 benchmark(s) within limit, worst test_sleep: median 1.")
    # the faster run compared against the slower one is an improvement
    improved = check(project, current="0001", baseline="0002")
    assert improved.passed, improved.message
    assert improved.details["changes"]["test_parse"] < -0.5


def test_missing_baseline_fails_unless_record(project: Path) -> None:
    outcome = check(project, current="0001")
    assert not outcome.passed
    assert outcome.rollback is None  # no evidence: block, not a rollback
    machine = runs(project)[0].parent.name
    assert outcome.message.startswith(
        f"no run saved before {runs(project)[0].name} in {machine}: cannot compare"
    )
    recorded = check(project, current="0001", on_missing_baseline="record")
    assert recorded.passed
    assert recorded.measured == "no baseline"
    assert "recorded as the baseline" in recorded.message
    assert (
        check(project, baseline="0009").message
        == f"baseline run '0009' not found in {project / '.benchmarks'} or as a file"
    )


def test_benchmark_missing_from_current_run_fails(project: Path) -> None:
    first = runs(project)[0]
    data = json.loads(first.read_text())
    data["benchmarks"] = [b for b in data["benchmarks"] if b["name"] != "test_sleep"]
    (first.parent / "0003_renamed.json").write_text(json.dumps(data))
    outcome = check(project)
    assert not outcome.passed
    assert outcome.message == "test_sleep is in the baseline but missing from the current run"


def test_no_storage_fails(tmp_path: Path) -> None:
    outcome = check(tmp_path)
    assert not outcome.passed
    assert (
        outcome.message
        == f"benchmark storage {tmp_path / '.benchmarks'} not found (run pytest with --benchmark-autosave)"
    )
    (tmp_path / ".benchmarks" / "Linux").mkdir(parents=True)
    (tmp_path / ".benchmarks" / "Linux" / "0001_x.json").write_text("{}")
    assert (
        check(tmp_path, on_missing_baseline="record").message
        == "benchmark run 0001_x.json is unreadable: KeyError: 'benchmarks'"
    )


def test_go_bench_output(tmp_path: Path) -> None:
    shutil.copytree(DATA / "go", tmp_path / "go")
    outcome = check(
        tmp_path, benchmark="go/bench-new.txt", baseline="go/bench-old.txt", format="go"
    )
    assert not outcome.passed
    assert outcome.rollback is True
    assert outcome.message == (
        "BenchmarkAdd: median 938.66 us vs 1.19 ns (+79011937% > +50%) "
        "(bench-new.txt vs bench-old.txt)"
    )
    same = check(
        tmp_path,
        benchmark="go",
        current="go/bench-old.txt",
        baseline="go/./bench-old.txt",
        format="go",
    )
    assert not same.passed  # a run compared with itself is +0 % whatever it measured
    assert same.message == (
        "the baseline bench-old.txt is the current run itself: nothing to compare "
        "(save a newer run, or point 'current' and 'baseline' at different runs)"
    )
    missing = check(tmp_path, benchmark="go/bench-new.txt", format="go")
    assert not missing.passed
    assert missing.message.startswith("no 'baseline' file configured: cannot compare bench-new.txt")
    (tmp_path / "fail.txt").write_text("--- FAIL: BenchmarkAdd\nFAIL\texample.com/x\t0.1s\n")
    failed = check(tmp_path, benchmark="fail.txt", baseline="go/bench-old.txt", format="go")
    assert (
        failed.message == "go benchmark output fail.txt reports a failure: --- FAIL: BenchmarkAdd"
    )


def test_compare_ranks_the_worst() -> None:
    outcome = benchmark.compare(
        {"a": 2.4e-3, "b": 1.0, "c": 3.0}, {"a": 1.1e-3, "b": 1.0, "c": 1.0}, 0.5
    )
    assert outcome.message == "c: median 3.00 s vs 1.00 s (+200% > +50%) and 1 more"
    assert benchmark.format_seconds(2.4e-3) == "2.40 ms"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"benchmark": ""}, "key 'benchmark': expected a path, found ''"),
        (
            {"benchmark": "b", "format": "jmh"},
            "key 'format': expected \"pytest\" or \"go\", found 'jmh'",
        ),
        (
            {"benchmark": "b", "max_regression": 0},
            "key 'max_regression': expected a fraction > 0 (0.5 = +50 %), found 0",
        ),
        (
            {"benchmark": "b", "on_missing_baseline": "pass"},
            "key 'on_missing_baseline': expected \"fail\" or \"record\", found 'pass'",
        ),
    ],
)
def test_validate(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        benchmark.validate(spec, WHERE)
    assert str(info.value) == f"{WHERE}: {message}"


def test_baseline_pinned_to_the_only_run_is_not_a_comparison(project: Path) -> None:
    """baseline = "0001" with 0001 the newest saved run: the run would be compared with itself."""
    runs(project)[1].unlink()
    only = runs(project)[0].name
    for spec in ({"baseline": "0001"}, {"baseline": only}, {"current": "1", "baseline": "0001"}):
        outcome = check(project, **spec)
        assert not outcome.passed, spec
        assert outcome.rollback is None
        assert outcome.message == (
            f"the baseline {only} is the current run itself: nothing to compare "
            "(save a newer run, or point 'current' and 'baseline' at different runs)"
        )


@pytest.mark.parametrize("median", [0.0, -1.0, float("nan"), float("inf")])
def test_current_median_must_be_a_positive_time(project: Path, median: float) -> None:
    second = runs(project)[1]  # the baseline of 0003: the run saved just before it
    data = json.loads(second.read_text())
    base = next(b for b in data["benchmarks"] if b["name"] == "test_sleep")["stats"]["median"]
    for bench in data["benchmarks"]:
        bench["stats"]["median"] = median
    (second.parent / "0003_broken.json").write_text(json.dumps(data))
    outcome = check(project, benchmarks=["test_sleep"])
    assert not outcome.passed
    assert outcome.message == (
        f"test_sleep: no usable median (baseline {base!r}, current {median!r}): expected times > 0"
    )
    # and the other way round: a broken baseline
    outcome = check(project, current="0002", baseline="0003", benchmarks=["test_sleep"])
    assert not outcome.passed
    assert outcome.message.startswith(f"test_sleep: no usable median (baseline {median!r}, ")


def test_median_that_is_not_a_number_is_unreadable(project: Path) -> None:
    second = runs(project)[1]
    data = json.loads(second.read_text())
    data["benchmarks"][0]["stats"]["median"] = "fast"
    (second.parent / "0003_text.json").write_text(json.dumps(data))
    assert (
        check(project).message
        == "benchmark run 0003_text.json is unreadable: TypeError: median 'fast' is not a number"
    )


@pytest.mark.parametrize("value", ["-5", "1.2.3", "0", "1e400", "NaN", "0x10"])
def test_go_time_that_is_not_a_positive_number_fails(tmp_path: Path, value: str) -> None:
    shutil.copytree(DATA / "go", tmp_path / "go")
    new = (DATA / "go" / "bench-new.txt").read_text().splitlines()
    line = next(n for n, text in enumerate(new) if text.startswith("BenchmarkAdd"))
    new[line] = f"BenchmarkAdd-2   \t    2000\t   {value} ns/op"
    (tmp_path / "new.txt").write_text("\n".join(new) + "\n")
    outcome = check(tmp_path, benchmark="new.txt", baseline="go/bench-old.txt", format="go")
    assert not outcome.passed
    assert outcome.rollback is None
    assert outcome.message == (
        f"go benchmark output new.txt line {line + 1}: BenchmarkAdd: expected a time > 0 "
        f"in ns/op, found {value!r}"
    )
