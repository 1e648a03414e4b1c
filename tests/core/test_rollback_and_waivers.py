"""The rollback command (rendered, printed, executed) and waivers instead of --force."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reports import REPORT_NAME, REPORT_OPTION, RunAndParse, read, rollback_result

FAILING = "import pytest\n@pytest.mark.dev\n@pytest.mark.gate(name='lint')\ndef test_lint():\n    assert False, 'lint failed'\n"
PASSING = "import pytest\n@pytest.mark.dev\ndef test_ok(): pass\n"


def config(pytester: pytest.Pytester, body: str) -> None:
    pytester.makefile(".toml", promotion=body)


def test_rollback_template_rendered_with_env_and_version(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    config(
        pytester,
        '[environments.staging]\nrollback = "gh workflow run environment-promotion.yml '
        '--field rollback=true --field environment={env} --field version={previous_version}"\n',
    )
    pytester.makepyfile(FAILING)
    result, report = run_and_parse(
        "--env=staging", "--promotion-version=1.5.0", "--promotion-previous-version=1.4.2"
    )
    expected = (
        "gh workflow run environment-promotion.yml --field rollback=true "
        "--field environment=staging --field version=1.4.2"
    )
    assert result.ret == 1
    assert report["rollback_command"] == expected
    argv = report["rollback"]["argv"]
    assert argv is not None
    assert argv[-1] == "version=1.4.2"
    result.stdout.fnmatch_lines([f"rollback command: {expected}"])


def test_promote_has_no_rollback_command(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    config(pytester, '[environments.staging]\nrollback = "deploy --undo {env}"\n')
    pytester.makepyfile(PASSING)
    result, report = run_and_parse("--env=staging")
    assert result.ret == 0
    assert report["rollback_command"] is None
    assert "rollback command" not in result.stdout.str()


@pytest.mark.parametrize("version", ["1.0; rm -rf /", "$(id)", "--upload-pack=x", "a b"])
def test_hostile_version_is_never_put_into_the_command(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, version: str
) -> None:
    # Refused when the run starts, like an invalid --env: no gate runs.
    config(pytester, '[environments.staging]\nrollback = ["deploy", "--version={version}"]\n')
    pytester.makepyfile(FAILING)
    result, report = run_and_parse("--env=staging", f"--promotion-version={version}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --promotion-version {version!r}: not a plain version*"])
    assert report["decision"] == "block"


@pytest.mark.parametrize("variable", ["PROMOTION_VERSION", "PROMOTION_PREVIOUS_VERSION"])
def test_hostile_version_from_the_environment_is_refused_at_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "1.0; rm -rf /")
    config(pytester, '[environments.staging]\nrollback = "deploy {previous_version}"\n')
    pytester.makepyfile(FAILING)
    result = pytester.runpytest("--env=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {variable} '1.0; rm -rf /': not a plain version*"])
    assert "lint failed" not in result.stdout.str()  # no gate ran


@pytest.mark.parametrize(
    ("template", "needs"),
    [
        ("deploy {previous_version}", "--promotion-previous-version or PROMOTION_PREVIOUS_VERSION"),
        ("deploy {version}", "--promotion-version or PROMOTION_VERSION"),
    ],
)
def test_missing_template_value_is_a_usage_error_at_start(
    pytester: pytest.Pytester, template: str, needs: str
) -> None:
    config(pytester, f'[environments.staging]\nrollback = "{template}"\n')
    pytester.makepyfile(FAILING)
    result = pytester.runpytest("--env=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: the rollback command of staging needs *: set {needs}"])
    assert "lint failed" not in result.stdout.str()  # no gate ran


def test_previous_version_from_the_hook(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    config(pytester, '[environments.staging]\nrollback = "deploy {previous_version}"\n')
    pytester.makeconftest(
        """
        def pytest_promotion_previous_version(config, environment):
            return ("1.3.0", "deploy tool")
        """
    )
    pytester.makepyfile(FAILING)
    result, report = run_and_parse("--env=staging")
    assert result.ret == 1
    assert report["rollback_command"] == "deploy 1.3.0"
    result.stdout.fnmatch_lines(["rollback command: deploy 1.3.0"])


def test_first_promotion_has_no_rollback_target(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    config(pytester, '[environments.staging]\nrollback = "deploy {previous_version}"\n')
    pytester.makeconftest(
        """
        def pytest_promotion_previous_version(config, environment):
            return (None, "ledger sqlite:///l.db")
        """
    )
    pytester.makepyfile(FAILING)
    result, report = run_and_parse("--env=staging", "--junitxml=gate.xml")
    assert result.ret == 1
    note = "no rollback target: first promotion of staging (ledger sqlite:///l.db)"
    assert report["rollback_command"] is None
    assert note in report["warnings"]
    result.stdout.fnmatch_lines([f"rollback command: {note}"])
    assert "none configured" not in result.stdout.str()
    assert note in (pytester.path / "gate.xml").read_text()


def test_hook_supplies_the_rollback_command(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makeconftest(
        """
        def pytest_promotion_rollback_command(config, environment, decision):
            return ["helm", "rollback", "agent", "--namespace", environment.name]

        seen = []
        def pytest_promotion_decision(config, decision):
            seen.append(decision.decision)
            print("NOTIFY", decision.environment, decision.decision)
        """
    )
    pytester.makepyfile(FAILING)
    result, report = run_and_parse("--env=staging", "-s")
    assert report["rollback_command"] == "helm rollback agent --namespace staging"
    result.stdout.fnmatch_lines(["*NOTIFY staging block"])


def test_execute_runs_the_command_and_reports_its_output(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    script = pytester.makepyfile(
        rollback_script="import sys, pathlib\n"
        "pathlib.Path('rolled-back').write_text(sys.argv[1])\n"
        "print('rolled back', sys.argv[1])\n"
        "sys.exit(3)\n"
    )
    config(
        pytester,
        f'[environments.staging]\nrollback = ["{sys.executable}", "{script}", "{{env}}"]\n',
    )
    pytester.makepyfile(FAILING)
    result, report = run_and_parse(
        "--env=staging", "--promotion-rollback=execute", "-p", "no:python_path"
    )
    assert (pytester.path / "rolled-back").read_text() == "staging"
    rollback = rollback_result(report)
    assert rollback["returncode"] == 3
    assert "rolled back staging" in rollback["output"]
    result.stdout.fnmatch_lines(["rollback executed: exit 3", "  | rolled back staging"])


def test_execute_has_a_deadline(pytester: pytest.Pytester, run_and_parse: RunAndParse) -> None:
    config(
        pytester,
        f"[environments.staging]\nrollback_timeout = 0.5\n"
        f'rollback = ["{sys.executable}", "-c", "import time; time.sleep(30)"]\n',
    )
    pytester.makepyfile(FAILING)
    _, report = run_and_parse("--env=staging", "--promotion-rollback=execute")
    result = rollback_result(report)
    assert result["timed_out"] is True
    assert result["error"] == "timed out after 0.5 s"


# A rollback command that starts a process which leaves the process group (setsid) but
# keeps the output pipe open, writes the pids to files, then runs for `main_sleep` s.
ESCAPING = """
import os, pathlib, subprocess, sys, time
escaped = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
)
pathlib.Path("escaped.pid").write_text(str(escaped.pid))
same_group = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
pathlib.Path("group.pid").write_text(str(same_group.pid))
pathlib.Path("main.pid").write_text(str(os.getpid()))
print("rolling back", flush=True)
time.sleep(float(sys.argv[1]))
"""


def alive(pid: int) -> bool:
    """A process exists and is not a zombie (a container's init may never reap one)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def still_alive(pids: list[int]) -> list[int]:
    """The pids still alive after up to 5 s (a SIGKILL is delivered asynchronously)."""
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


@pytest.fixture
def leftovers(pytester: pytest.Pytester) -> Iterator[None]:
    """Kill, by the pids they wrote, whatever the rollback command started."""
    yield
    for name in ("escaped.pid", "group.pid", "main.pid"):
        path = pytester.path / name
        if path.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(path.read_text()), signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize(
    ("main_sleep", "timeout", "returncode", "error"),
    [
        ("100", "1", -9, "timed out after 1 s"),  # the deadline passes
        ("0", "60", 0, None),  # the command ends at once; its escaped child does not
    ],
)
@pytest.mark.integration
def test_execute_is_bounded_when_a_process_escapes_the_group_holding_the_output(
    pytester: pytest.Pytester,
    run_and_parse: RunAndParse,
    leftovers: None,
    main_sleep: str,
    timeout: str,
    returncode: int,
    error: str | None,
) -> None:
    """Once killpg had run, the run read the output until its end: a `setsid` child that
    held the pipe kept the whole run waiting (30 s here) past rollback_timeout."""
    script = pytester.makepyfile(rollback_script=ESCAPING)
    config(
        pytester,
        f"[environments.staging]\nrollback_timeout = {timeout}\n"
        f'rollback = ["{sys.executable}", "{script}", "{main_sleep}"]\n',
    )
    pytester.makepyfile(FAILING)
    start = time.monotonic()
    result, report = run_and_parse(
        "--env=staging", "--promotion-rollback=execute", timeout=60, subprocess=True
    )
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"the rollback took {elapsed:.1f} s"  # a hang detector, not a timing
    assert result.ret == 1
    rollback = rollback_result(report)
    assert rollback["timed_out"] is (error is not None)
    assert rollback["error"] == error
    assert rollback["returncode"] == returncode
    assert rollback["output"] == "rolling back\n"
    status = error or f"exit {returncode}"
    result.stdout.fnmatch_lines([f"rollback executed: {status}", "  | rolling back"])
    # its process group is killed, however the command ended
    assert still_alive([int((pytester.path / "group.pid").read_text())]) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.integration
def test_ctrl_c_or_sigterm_during_execute_kills_the_command_and_says_so(
    pytester: pytest.Pytester, leftovers: None, signum: int
) -> None:
    """Ctrl-C during the rollback gave a traceback and left the command (its own session,
    so the terminal's SIGINT never reached it) running; a SIGTERM (a CI job cancelled) was
    ignored until the command ended."""
    script = pytester.makepyfile(rollback_script=ESCAPING)
    config(
        pytester,
        f"[environments.staging]\nrollback_timeout = 60\n"
        f'rollback = ["{sys.executable}", "{script}", "60"]\n',
    )
    pytester.makepyfile(FAILING)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--env=staging",
            REPORT_OPTION,
            "--promotion-rollback=execute",
            "-p",
            "no:cacheprovider",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        main_pid = pytester.path / "main.pid"
        deadline = time.monotonic() + 30
        while not main_pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert main_pid.exists(), "the rollback command never started"
        pids = [int((pytester.path / n).read_text()) for n in ("main.pid", "group.pid")]
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "rollback executed: interrupted (process group killed)" in text
    assert proc.returncode == 1, text
    report = read(pytester.path / REPORT_NAME)
    assert report["decision"] == "block"
    assert rollback_result(report)["error"] == "interrupted (process group killed)"
    assert rollback_result(report)["returncode"] == -9
    assert still_alive(pids) == []


def test_output_kept_is_bounded(pytester: pytest.Pytester, run_and_parse: RunAndParse) -> None:
    config(
        pytester,
        "[environments.staging]\nrollback = "
        f'["{sys.executable}", "-c", "import sys; sys.stdout.write(\'x\' * 5_000_000 + \'END\')"]\n',
    )
    pytester.makepyfile(FAILING)
    _, report = run_and_parse("--env=staging", "--promotion-rollback=execute")
    rollback = rollback_result(report)
    assert rollback["returncode"] == 0
    head, tail = rollback["output"].split("\n")
    assert head == "[output truncated: kept the last 65536 of 5000003 bytes]"
    assert tail == "..." + "x" * 65533 + "END"  # "...": a cut a secret's piece may sit at


def test_a_secret_cut_by_the_output_cap_is_still_masked(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cap keeps the last 64 KiB: the cut fell inside the token, and its end
    # ("Tok123456") was no longer the whole secret that masking looks for.
    monkeypatch.setenv("DEPLOY_TOKEN", "SuperSecretTok123456")
    script = "import os, sys; sys.stdout.write('token=' + os.environ['DEPLOY_TOKEN'] + 'y' * 65526)"
    config(
        pytester,
        '[environments.staging]\nvars = { token = "${DEPLOY_TOKEN}" }\n'
        f'rollback = ["{sys.executable}", "-c", "{script}"]\n',
    )
    pytester.makepyfile(FAILING)
    result, report = run_and_parse("--env=staging", "--promotion-rollback=execute")
    output = rollback_result(report)["output"]
    assert output.startswith("[output truncated: kept the last 65536 of 65552 bytes]\n...***y")
    assert "Tok123" not in output and "Tok123" not in result.stdout.str()


@pytest.mark.parametrize(
    ("returned", "warning"),
    [
        (
            "42",
            "expected an argv list of strings or a string, found int 42",
        ),
        (
            "{'cmd': 'helm'}",
            "expected an argv list of strings or a string, found dict {'cmd': 'helm'}",
        ),
        (
            "['helm', None]",
            "expected an argv list of strings or a string, found list ['helm', None]",
        ),
        ("''", "expected a command, found ''"),
        ("'helm \"rollback'", "No closing quotation in 'helm \"rollback'"),
    ],
)
def test_hook_result_that_is_no_command_is_reported(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, returned: str, warning: str
) -> None:
    pytester.makeconftest(
        f"""
        def pytest_promotion_rollback_command(config, environment, decision):
            return {returned}
        """
    )
    pytester.makepyfile(FAILING)
    result, report = run_and_parse("--promotion-config=none", "--env=staging")
    assert result.ret == 1
    assert report["decision"] == "block"
    assert report["rollback_command"] is None
    expected = (
        "rollback command of staging from the pytest_promotion_rollback_command hook "
        f"cannot be used: {warning}"
    )
    assert report["warnings"] == [expected]
    result.stdout.fnmatch_lines([f"warning: {expected}"])


def test_hook_may_return_a_string_split_like_the_template(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    """A string was taken as a list of its characters: 'h e l m ...'."""
    pytester.makeconftest(
        """
        def pytest_promotion_rollback_command(config, environment, decision):
            return f"helm rollback 'agent one' --namespace {environment.name}"
        """
    )
    pytester.makepyfile(FAILING)
    result, report = run_and_parse("--env=staging")
    assert report["rollback"]["argv"] == ["helm", "rollback", "agent one", "--namespace", "staging"]
    assert report["rollback_command"] == "helm rollback 'agent one' --namespace staging"
    result.stdout.fnmatch_lines(["rollback command: helm rollback 'agent one' --namespace staging"])


def test_print_mode_never_runs_the_command(pytester: pytest.Pytester) -> None:
    config(
        pytester,
        f'[environments.staging]\nrollback = ["{sys.executable}", "-c", "open(\'ran\', \'w\')"]\n',
    )
    pytester.makepyfile(FAILING)
    pytester.runpytest("--env=staging")
    assert not (pytester.path / "ran").exists()


def test_waiver_turns_a_failure_into_a_recorded_waiver(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(FAILING)
    result, report = run_and_parse("--env=staging", "--waive", "lint=JIRA-123 known false positive")
    assert result.ret == 0
    assert report["decision"] == "promote"
    assert report["waivers"] == [
        {"gate": "lint", "reason": "JIRA-123 known false positive", "used": True}
    ]
    assert report["gates"][0]["waiver"] == "JIRA-123 known false positive"
    result.stdout.fnmatch_lines(["lint*WAIVED", "waiver: lint: JIRA-123 known false positive"])


def test_waiver_covers_only_its_gate(pytester: pytest.Pytester, run_and_parse: RunAndParse) -> None:
    pytester.makepyfile(FAILING + "\n@pytest.mark.dev\ndef test_other():\n    assert False\n")
    result, report = run_and_parse("--env=staging", "--waive", "lint=accepted")
    assert result.ret == 1
    assert report["decision"] == "block"


def test_prod_forbids_waivers_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest("--promotion-config=none", "--env=prod", "--waive", "lint=please")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--waive lint: prod forbids waivers*"])


def test_waiver_for_unknown_gate_blocks(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(PASSING)
    result, report = run_and_parse("--env=staging", "--waive", "tets_ok=reason")
    # Refused before any gate runs, with the names it could have meant.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --waive tets_ok: names no gate of staging (did you mean *test_ok*?)"]
    )
    assert "1 passed" not in result.stdout.str()
    assert report["reasons"] == [
        "usage error: --waive tets_ok: names no gate of staging (did you mean test_ok?)"
    ]


@pytest.mark.parametrize("value", ["lint", "=reason", "lint="])
def test_malformed_waiver_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--env=staging", "--waive", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
