"""command: real tools (ruff, the interpreter, pytest writing JUnit, gofmt) as argv lists."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from pytest_promotion.checks import CheckConfigError, command
from pytest_promotion.checks.base import Outcome, Target

from .conftest import DATA, write

WHERE = "promotion.toml: [[environments.dev.checks]] 'lint'"
RUFF = str(Path(sys.executable).with_name("ruff"))


def check(root: Path, **spec: object) -> Outcome:
    command.validate(spec, WHERE)
    return command.run(spec, Target(env="dev", rootdir=root, secrets=("hunter2-secret",)))


@pytest.mark.integration
def test_ruff_format_check_on_unformatted_code_fails(tmp_path: Path) -> None:
    write(tmp_path, {"src/ugly.py": "x   =  [1,2 ,3]\n", "src/nice.py": "y = 1\n"})
    outcome = check(tmp_path, command=[RUFF, "format", "--check", "--no-cache", "src"])
    assert not outcome.passed
    assert outcome.measured == "exit 1"
    assert outcome.threshold == "exit 0"
    assert (
        outcome.message
        == f"{RUFF} format --check --no-cache src: exit 1, expected 0: 1 file would be reformatted, 1 file already formatted"
    )
    assert "--> src/ugly.py:1:3" in outcome.details["output_tail"]
    assert command.ROLLBACK is False and outcome.rollback is None


@pytest.mark.integration
def test_ruff_on_formatted_code_passes(tmp_path: Path) -> None:
    write(tmp_path, {"src/nice.py": "y = 1\n"})
    outcome = check(tmp_path, command=[RUFF, "format", "--check", "--no-cache", "src"])
    assert outcome.passed, outcome.message
    assert outcome.measured == "exit 0"
    assert outcome.message.startswith(f"{RUFF} format --check --no-cache src: exit 0 in ")


def test_missing_tool_fails(tmp_path: Path) -> None:
    outcome = check(tmp_path, command=["no-such-linter-xyz", "check", "."])
    assert not outcome.passed
    here = Path(sys.executable).parent
    assert outcome.message.startswith(
        f"no-such-linter-xyz is not installed (looked on PATH and in {here}"
    )


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    # the child starts a grandchild that would outlive it; both must be gone
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "open('grandchild.pid', 'w').write(str(p.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(30)\n"
    )
    write(tmp_path, {"slow.py": script})
    start = time.monotonic()
    outcome = check(tmp_path, command=[sys.executable, "slow.py"], timeout=2.5)
    assert time.monotonic() - start < 10
    assert not outcome.passed
    assert outcome.message.endswith("slow.py: timed out after 2.5 s (process group killed)")
    assert outcome.measured == "timeout"
    assert outcome.details["output_tail"] == "started"
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    deadline = time.monotonic() + 5  # SIGKILL went to the group; its delivery is asynchronous
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_string_command_is_split_and_shell_syntax_refused(tmp_path: Path) -> None:
    outcome = check(tmp_path, command=f"{sys.executable} -c 'print(42)'")
    assert outcome.passed, outcome.message
    assert outcome.details["output_tail"] == "42"
    with pytest.raises(CheckConfigError) as info:
        command.validate({"command": "ruff check . | tee out"}, WHERE)
    assert str(info.value).startswith(
        f"{WHERE}: key 'command': the command runs without a shell, so '|' would be passed literally"
    )


def test_expect_exit_env_cwd_and_redaction(tmp_path: Path) -> None:
    write(tmp_path, {"sub/x.txt": ""})
    code = "import os, sys; print('token', os.environ['TOKEN'], os.getcwd()); sys.exit(3)"
    outcome = check(
        tmp_path,
        command=[sys.executable, "-c", code],
        env={"TOKEN": "hunter2-secret"},
        cwd="sub",
        expect_exit=3,
    )
    assert outcome.passed, outcome.message
    assert outcome.details["output_tail"] == f"token *** {tmp_path / 'sub'}"
    bad = check(tmp_path, command=[sys.executable, "-c", code], env={"TOKEN": "hunter2-secret"})
    assert not bad.passed
    assert bad.message.endswith(f"exit 3, expected 0: token *** {tmp_path}")
    assert "hunter2" not in bad.message + bad.details["output_tail"]


def test_expect_empty_output_with_real_gofmt(tmp_path: Path) -> None:
    # optional: tests must not need Go (.ci/run does not install it), so no require_binary;
    # test_expect_empty_output below covers the rule with gofmt's recorded output
    gofmt = shutil.which("gofmt")
    if gofmt is None:
        pytest.skip("gofmt is not installed (optional: the recorded output is tested below)")
    shutil.copytree(DATA / "go" / "src", tmp_path, dirs_exist_ok=True)
    outcome = check(tmp_path, command=[gofmt, "-l", "."], expect_empty_output=True)
    assert not outcome.passed
    assert outcome.message == f"{gofmt} -l .: expected no output, got 'parse/parse.go'"


def test_expect_empty_output(tmp_path: Path) -> None:
    # the same rule against the recorded `gofmt -l` output, for machines without Go
    listing = str(DATA / "go" / "gofmt-l.txt")
    outcome = check(tmp_path, command=["cat", listing], expect_empty_output=True)
    assert not outcome.passed
    assert outcome.message == f"cat {listing}: expected no output, got 'parse/parse.go'"
    assert check(tmp_path, command=["true"], expect_empty_output=True).passed


TESTS = """
import pytest

def test_one():
    pass

def test_two():
    pass

@pytest.mark.skip(reason="later")
def test_three():
    pass

def test_four():
    assert {fail} == 0
"""


@pytest.mark.integration
def test_junit_from_a_real_pytest_run(tmp_path: Path) -> None:
    write(tmp_path, {"t/test_x.py": TESTS.format(fail=0)})
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--junitxml=report.xml",
        "t",
    ]
    outcome = check(tmp_path, command=argv, junit="report.xml")
    assert outcome.passed, outcome.message
    assert outcome.measured == "3 passed, 1 skipped"
    # pytest exits 1 on a failing test; with expect_exit = 1 the JUnit report still decides
    write(tmp_path, {"t/test_x.py": TESTS.format(fail=1)})
    outcome = check(tmp_path, command=argv, junit="report.xml", expect_exit=1)
    assert not outcome.passed
    assert outcome.measured == "2 passed, 1 failed, 1 skipped"
    assert outcome.message.endswith(": 2 passed, 1 failed, 1 skipped (t.test_x.test_four)")


def test_junit_missing_or_stale_fails(tmp_path: Path) -> None:
    outcome = check(tmp_path, command=["true"], junit="report.xml")
    assert not outcome.passed
    assert outcome.message == "true: exit 0 but no JUnit report at report.xml"
    (tmp_path / "report.xml").write_text('<testsuite><testcase name="a"/></testsuite>')
    outcome = check(tmp_path, command=["true"], junit="report.xml")
    assert not outcome.passed
    assert outcome.message == "true: exit 0 but report.xml was not written by this run"


def test_junit_failure_fails_even_with_exit_zero(tmp_path: Path) -> None:
    xml = '<testsuites><testsuite><testcase classname="a" name="ok"/><testcase classname="a" name="bad"><error message="x"/></testcase></testsuite></testsuites>'
    code = f"open('r.xml', 'w').write({xml!r})"
    outcome = check(tmp_path, command=[sys.executable, "-c", code], junit="r.xml")
    assert not outcome.passed
    assert outcome.measured == "1 passed, 1 errors"
    empty = check(
        tmp_path,
        command=[sys.executable, "-c", "open('r.xml', 'w').write('<testsuite/>')"],
        junit="r.xml",
    )
    assert not empty.passed
    assert empty.message.endswith("r.xml lists no passed test (0 passed)")


def test_output_is_capped(tmp_path: Path) -> None:
    code = "import sys; [print(i) for i in range(100000)]; sys.exit(1)"
    outcome = check(tmp_path, command=[sys.executable, "-c", code], max_output_bytes=1000)
    assert not outcome.passed
    assert outcome.message.endswith("exit 1, expected 0: 99999")
    assert outcome.details["output_tail"].splitlines() == [
        "[stdout truncated: kept the last 1000 of 588890 bytes]",
        *[str(i) for i in range(99960, 100000)],
    ]
    assert outcome.details["output_bytes"] == {"stdout": 588890, "stderr": 0}


def test_output_beyond_the_cap_is_neither_kept_nor_written_to_disk(tmp_path: Path) -> None:
    """stdout went to a temporary file that grew with the output (50 MB for a cap of
    1000 bytes). The tool limits the files it may write to 1 MiB (RLIMIT_FSIZE): writing
    its output to a file kills it (SIGXFSZ), writing it to a pipe does not."""
    code = (
        "import os, resource\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "def write(fd, data):\n"
        "    while data:  # EFBIG (Python ignores SIGXFSZ) once a file passes 1 MiB\n"
        "        data = data[os.write(fd, data):]\n"
        "for _ in range(50):\n"
        "    write(1, b'x' * 1_000_000)\n"
        "write(1, b'END')\n"
        "write(2, b'e' * 3000)\n"
    )
    outcome = check(tmp_path, command=[sys.executable, "-c", code], max_output_bytes=1000)
    assert outcome.passed, outcome.message
    assert outcome.details["output_bytes"] == {"stdout": 50_000_003, "stderr": 3000}
    assert outcome.details["output_tail"].splitlines() == [
        "[stdout truncated: kept the last 1000 of 50000003 bytes]",
        "[stderr truncated: kept the last 1000 of 3000 bytes]",
        "..." + "x" * 997 + "END",  # "...": where a cut secret's piece would be masked
        "..." + "e" * 1000,
    ]


@pytest.mark.parametrize(
    ("output", "message", "measured"),
    [
        # the offending line, then more blank output than max_output_bytes keeps
        ("'pkg/unformatted.go\\n' + '\\n' * 5000", "got 'pkg/unformatted.go'", 5019),
        ("'\\n' * 5000 + '  late.go  \\n' + ' \\n' * 5000", "got 'late.go  '", 15012),
        (
            "'a.go\\n' + '\\n' * 5000 + 'b.go\\r\\n' + 'x' * 3000 + '\\n\\n'",
            "got 'a.go' and 2 more line(s)",
            8013,
        ),
    ],
)
def test_expect_empty_output_judges_all_of_the_output(
    tmp_path: Path, output: str, message: str, measured: int
) -> None:
    """Only the kept tail was judged: a listing followed by more blank lines than
    max_output_bytes passed."""
    code = f"import sys; sys.stdout.write({output})"
    outcome = check(
        tmp_path,
        command=[sys.executable, "-c", code],
        expect_empty_output=True,
        max_output_bytes=1000,
    )
    assert not outcome.passed
    assert outcome.message.endswith(f": expected no output, {message}")
    assert outcome.measured == f"{measured} bytes of output"


def test_blank_output_beyond_the_cap_is_empty(tmp_path: Path) -> None:
    code = "import sys; sys.stdout.write(' \\n\\t\\r\\n' * 10000)"
    outcome = check(
        tmp_path,
        command=[sys.executable, "-c", code],
        expect_empty_output=True,
        max_output_bytes=100,
    )
    assert outcome.passed, outcome.message


def test_a_process_that_escapes_the_group_holding_the_output_is_not_waited_for(
    tmp_path: Path,
) -> None:
    # the command ends at once; the child it started in a new session keeps stdout open
    script = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'],\n"
        "                     start_new_session=True)\n"
        "open('escaped.pid', 'w').write(str(p.pid))\n"
        "print('done', flush=True)\n"
    )
    write(tmp_path, {"escape.py": script})
    start = time.monotonic()
    try:
        outcome = check(tmp_path, command=[sys.executable, "escape.py"], timeout=60)
    finally:
        pid_file = tmp_path / "escaped.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert time.monotonic() - start < 10  # a hang detector, not a timing
    assert outcome.passed, outcome.message
    assert outcome.details["output_tail"] == "done"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"command": []}, "key 'command': expected a non-empty list of strings, found []"),
        (
            {"command": ["a", 1]},
            "key 'command': expected a non-empty list of strings, found ['a', 1]",
        ),
        ({"command": ["a"], "env": {"N": 1}}, "key 'env': expected N = a string, found int 1"),
        (
            {"command": ["a"], "max_output_bytes": 0},
            "key 'max_output_bytes': expected > 0, found 0",
        ),
    ],
)
def test_validate(spec: dict[str, object], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        command.validate(spec, WHERE)
    assert str(info.value) == f"{WHERE}: {message}"


def _junit_check(tmp_path: Path, xml: str) -> Outcome:
    code = f"open('r.xml', 'w').write({xml!r})"
    return check(tmp_path, command=[sys.executable, "-c", code], junit="r.xml")


@pytest.mark.parametrize(
    ("cases", "measured"),
    [
        ('<testcase name="a"><skipped/><error message="x"/></testcase>', "0 passed, 1 errors"),
        ('<testcase name="a"><error message="x"/><skipped/></testcase>', "0 passed, 1 errors"),
        ('<testcase name="a"><skipped/><failure message="x"/></testcase>', "0 passed, 1 failed"),
        ('<testcase name="a"><failure/><error/></testcase>', "0 passed, 1 errors"),
    ],
)
def test_a_case_counts_by_its_worst_outcome(tmp_path: Path, cases: str, measured: str) -> None:
    """A case with a skip and an error counted as skipped, and the gate passed."""
    ok = '<testcase name="ok"/>'
    outcome = _junit_check(tmp_path, f"<testsuite>{ok}{cases}</testsuite>")
    assert not outcome.passed
    assert outcome.measured == measured.replace("0 passed", "1 passed")


@pytest.mark.parametrize(
    ("suite", "why"),
    [
        ('<testsuite name="s" tests="5">', "suite 's' says tests=5 but lists 1"),
        ('<testsuite name="s" failures="1">', "suite 's' says failures=1 but lists 0"),
        ('<testsuite name="s" errors="x">', "suite 's' has errors='x', not a number"),
        ('<testsuite name="s" skipped="2">', "suite 's' says skipped=2 but lists 0"),
    ],
)
def test_a_suite_whose_totals_contradict_its_cases_fails(
    tmp_path: Path, suite: str, why: str
) -> None:
    outcome = _junit_check(tmp_path, f'{suite}<testcase name="ok"/></testsuite>')
    assert not outcome.passed
    assert outcome.message.endswith(f"r.xml: {why}"), outcome.message


@pytest.mark.integration
def test_a_real_pytest_report_with_every_outcome_is_consistent(tmp_path: Path) -> None:
    tests = (
        "import pytest\n"
        "@pytest.fixture\n"
        "def broken():\n    yield\n    raise RuntimeError('teardown')\n"
        "def test_ok(): pass\n"
        "def test_fail_and_teardown_error(broken): assert False\n"
        "def test_skip_then_teardown_error(broken): pytest.skip('later')\n"
        "@pytest.mark.xfail\ndef test_xfail(): assert False\n"
    )
    write(tmp_path, {"t/test_x.py": tests})
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    outcome = check(
        tmp_path, command=[*argv, "--junitxml=report.xml", "t"], junit="report.xml", expect_exit=1
    )
    assert not outcome.passed
    # pytest's own totals (tests=5 errors=2 failures=1 skipped=2) match its cases; the
    # skipped test whose teardown failed counts as an error, not as a skip
    assert outcome.measured == "1 passed, 1 failed, 2 errors, 1 skipped"
    assert "test_skip_then_teardown_error" in outcome.message
