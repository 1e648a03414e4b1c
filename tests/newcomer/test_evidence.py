"""pytest_promotion.evidence: a report is reused only while it is fresh for the tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import child_environ, require_binary

pytestmark = pytest.mark.integration

TOOL = "import pathlib, sys; pathlib.Path('runs').open('a').write('x'); pathlib.Path('r.xml').write_text('<r/>'); sys.exit(int(sys.argv[1]))"


def _run(root: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest_promotion.evidence", "--report", "r.xml"]
    argv += ["--stamp", "build/r.stamp", "--", sys.executable, "-c", TOOL, str(code)]
    return subprocess.run(
        argv, cwd=root, env=child_environ(), capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git = require_binary("git")
    (tmp_path / ".gitignore").write_text("build/\nr.xml\nruns\n")
    (tmp_path / "src.py").write_text("x = 1\n")
    subprocess.run([git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([git, "add", "."], cwd=tmp_path, check=True)
    return tmp_path


def _runs(root: Path) -> int:
    return len((root / "runs").read_text())


def test_second_run_on_same_tree_reuses_the_report(repo: Path) -> None:
    assert _run(repo).returncode == 0
    second = _run(repo)
    assert second.returncode == 0 and "fresh for this tree" in second.stdout
    assert _runs(repo) == 1


def test_failure_is_never_reused(repo: Path) -> None:
    assert _run(repo, 3).returncode == 3
    assert _run(repo, 3).returncode == 3
    assert _runs(repo) == 2  # a flake gets its rerun
    assert not (repo / "build" / "r.stamp").exists()


@pytest.mark.parametrize("change", ["edit", "new-file", "report"])
def test_any_change_runs_the_tool_again(repo: Path, change: str) -> None:
    _run(repo)
    if change == "edit":
        (repo / "src.py").write_text("x = 2\n")  # tracked, modified, not committed
    elif change == "new-file":
        (repo / "new.py").write_text("")  # untracked, not ignored
    else:
        (repo / "r.xml").write_text("<r>forged</r>")
    again = _run(repo)
    assert "fresh for this tree" not in again.stdout
    assert _runs(repo) == 2


def test_no_git_never_vouches(tmp_path: Path) -> None:
    _run(tmp_path)
    _run(tmp_path)
    assert _runs(tmp_path) == 2
