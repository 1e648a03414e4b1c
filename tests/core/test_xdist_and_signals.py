"""One decision under xdist, even when a worker dies; a SIGTERM ends in block."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reports import REPORT_NAME, REPORT_OPTION, RunAndParse, read

pytestmark = pytest.mark.integration

MANY = """
import pytest
pytestmark = pytest.mark.dev

@pytest.mark.parametrize("n", range(20))
def test_gate(n, gate):
    gate.measure(n, max=100)
"""


def test_xdist_one_decision_from_the_controller(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(MANY)
    result, report = run_and_parse("--env=staging", "-n", "2", subprocess=True)
    assert result.ret == 0
    assert report["decision"] == "promote"
    assert len(report["gates"]) == 20
    assert report["gates"][5]["measured"] == "5"
    assert result.stdout.str().count("decision: PROMOTE") == 1


def test_xdist_worker_that_dies_blocks(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(
        """
        import os, pytest
        pytestmark = pytest.mark.dev
        def test_ok(): pass
        def test_dies():
            os._exit(1)
        def test_ok_too(): pass
        """
    )
    result, report = run_and_parse("--env=staging", "-n", "2", subprocess=True)
    assert result.ret != 0
    assert report["decision"] == "block"
    dies = next(g for g in report["gates"] if g["id"].endswith("test_dies"))
    assert dies["outcome"] != "passed"
    assert any("test_dies" in r and "crashed" in r for r in report["reasons"])


def test_xdist_rollback_trigger_propagates_from_worker(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.staging
        def test_health(gate):
            gate.trigger_rollback()
            gate.measure(503, max=299)
        """
    )
    _, report = run_and_parse("--env=staging", "-n", "2", subprocess=True)
    assert report["decision"] == "rollback"


@pytest.mark.parametrize(("env", "ret"), [("prod", 1), ("staging", 0)])
def test_xdist_gates_dropped_by_a_conftest_are_counted(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, env: str, ret: int
) -> None:
    # The controller collects nothing: each worker says which gates it dropped.
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(config, items):
            items[:] = [i for i in items if "security" not in i.name]
        """
    )
    pytester.makepyfile(
        test_g="""
        import pytest
        pytestmark = pytest.mark.dev
        def test_ok(): pass
        def test_also_ok(): pass
        def test_security(): assert False
        """
    )
    result, report = run_and_parse(
        "--promotion-config=none", f"--env={env}", "-n", "2", subprocess=True
    )
    assert result.ret == ret
    said = f"1 gate of {env} was deselected (-k, -m, --deselect, --lf, --sw or a conftest): "
    tail = "(e.g. test_g.py::test_security)"
    if env == "prod":
        assert report["reasons"] == [f"{said}a partial run cannot promote prod {tail}"]
    else:
        assert report["decision"] == "promote"
        assert report["warnings"] == [f"{said}this run vouches only for the rest {tail}"]


def test_sigterm_ends_in_block_with_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pathlib, time, pytest
        @pytest.mark.dev
        def test_ok(): pass
        @pytest.mark.dev
        def test_slow():
            pathlib.Path("started").write_text("1")
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--env=staging",
            REPORT_OPTION,
            "--junitxml=gate.xml",
            "-p",
            "no:cacheprovider",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    started = Path(pytester.path, "started")
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the slow gate never started"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode not in (0, None), out.decode()
    report = read(pytester.path / REPORT_NAME)
    assert report["decision"] == "block"
    assert "interrupted (SIGTERM)" in report["reasons"][0]
    assert b"decision: BLOCK" in out
    assert 'value="block"' in Path(pytester.path, "gate.xml").read_text()


def test_sigkill_leaves_a_block_report_not_a_stale_promote(pytester: pytest.Pytester) -> None:
    report_path = Path(pytester.path, "decision.json")
    report_path.write_text(json.dumps({"decision": "promote"}))
    pytester.makepyfile(
        """
        import pathlib, time, pytest
        @pytest.mark.dev
        def test_slow():
            pathlib.Path("started").write_text("1")
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--env=staging", REPORT_OPTION],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not Path(pytester.path, "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=10)
    assert json.loads(report_path.read_text())["decision"] == "block"


def test_keyboard_interrupt_blocks(pytester: pytest.Pytester, run_and_parse: RunAndParse) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        def test_ok(): pass
        @pytest.mark.dev
        def test_ctrl_c():
            raise KeyboardInterrupt
        """
    )
    result, report = run_and_parse("--env=staging", subprocess=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert report["decision"] == "block"
    assert report["reasons"][0].startswith("the run was interrupted (KeyboardInterrupt)")
