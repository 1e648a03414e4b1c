"""Commands the plugin starts (command kind, bandit, rollback): nothing they start outlives
them, they do not inherit the gate run's target, and a tool next to the interpreter is
found (issue 11, items 28 and 30)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_promotion.checks import command
from pytest_promotion.checks.base import Outcome, Target
from tests.reports import RunAndParse, rollback_result

from .conftest import write

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# Starts a grandchild in a session of its own (setsid) and a great-grandchild through a
# double fork (its parent exits at once, so it is re-parented away), writes their pids,
# then sleeps `argv[1]` s.
ESCAPING = textwrap.dedent(
    """
    import os, pathlib, subprocess, sys, time
    own_session = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    pathlib.Path("session.pid").write_text(str(own_session.pid))
    daemon = (
        "import os, pathlib, subprocess, sys, time\\n"
        "os.setsid()\\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True)\\n"
        "pathlib.Path('daemon.pid').write_text(str(p.pid))\\n"
    )
    subprocess.run([sys.executable, "-c", daemon], check=True)  # its parent is gone now
    print("started", flush=True)
    time.sleep(float(sys.argv[1]))
    """
)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _survivors(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 5  # a SIGKILL is delivered asynchronously
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.fixture
def escaping(tmp_path: Path) -> Iterator[Path]:
    write(tmp_path, {"escaping.py": ESCAPING})
    yield tmp_path
    for name in ("session.pid", "daemon.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((tmp_path / name).read_text()), signal.SIGKILL)


def check(root: Path, **spec: object) -> Outcome:
    command.validate(spec, "promotion.toml: [[environments.dev.checks]] 'x'")
    return command.run(spec, Target(env="dev", rootdir=root, secrets=()))


@pytest.mark.parametrize(("sleep", "passed"), [("60", False), ("0", True)])
def test_nothing_a_command_started_outlives_it(escaping: Path, sleep: str, passed: bool) -> None:
    """A timeout killed the command's process group only: a grandchild in its own session
    and a double-forked daemon lived on (one nested pytest left 856 processes behind)."""
    outcome = check(escaping, command=[sys.executable, "escaping.py", sleep], timeout=3)
    assert outcome.passed is passed, outcome.message
    assert outcome.details["output_tail"] == "started"
    pids = [int((escaping / n).read_text()) for n in ("session.pid", "daemon.pid")]
    assert _survivors(pids) == []


def test_a_command_does_not_inherit_the_run_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("PROMOTION_ENV", "dev"), ("PROMOTION_VERSION", "1.2.3")):
        monkeypatch.setenv(name, value)
    code = "import os; print(sorted(k for k in os.environ if k.startswith('PROMOTION_')))"
    outcome = check(tmp_path, command=[sys.executable, "-c", code])
    assert outcome.details["output_tail"] == "[]"
    # a check's own env table may still set one on purpose
    outcome = check(tmp_path, command=[sys.executable, "-c", code], env={"PROMOTION_ENV": "x"})
    assert outcome.details["output_tail"] == "['PROMOTION_ENV']"


@pytest.mark.integration
def test_a_nested_pytest_is_an_ordinary_run(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This repository's own dev::unit-tests shape under PROMOTION_ENV=dev: the command's
    pytest was a dev gate run of the same config, running the same check, without end."""
    pytester.makefile(
        ".toml",
        promotion=f"""
        [environments.dev]
        [[environments.dev.checks]]
        name = "unit-tests"
        command = ["{sys.executable}", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "--junitxml=unit.xml", "unit"]
        junit = "unit.xml"
        timeout = 60
        """,
    )
    Path(pytester.path, "unit").mkdir()
    Path(pytester.path, "unit", "test_unit.py").write_text("def test_one():\n    pass\n")
    monkeypatch.setenv("PROMOTION_ENV", "dev")
    result, report = run_and_parse("-rA", timeout=120, subprocess=True)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*decision: PROMOTE*"])
    assert [g["measured"] for g in report["gates"]] == ["1 passed"]


@pytest.mark.integration
def test_a_tool_next_to_the_interpreter_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.venv/bin/pytest` run without activating the venv: its ruff is not on PATH."""
    monkeypatch.setenv("PATH", "/nonexistent-bin")
    write(tmp_path, {"nice.py": "y = 1\n"})
    outcome = check(tmp_path, command=["ruff", "format", "--check", "--no-cache", "nice.py"])
    assert outcome.passed, outcome.message
    missing = check(tmp_path, command=["no-such-linter-xyz"])
    assert missing.message == (
        f"no-such-linter-xyz is not installed (looked on PATH and in {Path(sys.executable).parent})"
    )


@pytest.mark.integration
def test_the_rollback_does_not_inherit_the_run_target(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROMOTION_ENV=staging (the documented CI way): the rollback command, a deploy tool
    that may itself run pytest, must not see it."""
    code = "import os; print('env:', os.environ.get('PROMOTION_ENV'))"
    pytester.makefile(
        ".toml",
        promotion=f"[environments.staging]\nrollback = {json.dumps([sys.executable, '-c', code])}\n",
    )
    pytester.makepyfile(
        test_g="import pytest\n@pytest.mark.staging\n"
        "@pytest.mark.gate(trigger='rollback')\ndef test_health(): assert False\n"
    )
    monkeypatch.setenv("PROMOTION_ENV", "staging")
    result, report = run_and_parse("--promotion-rollback=execute", subprocess=True)
    assert result.ret == 1
    assert rollback_result(report)["output"] == "env: None\n"
