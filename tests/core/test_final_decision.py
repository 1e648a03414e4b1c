"""The one place the verdict is made final, and every point the exit status is enforced.

Each test here fails when its enforcement point is removed: the pytest_runtestloop
wrapper (the status every pytest_sessionfinish implementation is handed), the
pytest_cmdline_main wrapper (the very end), the finalize and decision hooks, the
start-time checks of the report paths.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_promotion.decision import Decision, Verdict
from tests.reports import Report, RunAndParse

CHAIN = '[promotion]\nenvironments = ["dev", "staging", "prod"]\n'
# Every gate passes, and yet the run must block: dev forbids skips, and one gate skips.
SKIPPING = """
import pytest
pytestmark = pytest.mark.dev
def test_ok(): pass
def test_skipped(): pytest.skip("scanner not installed")
"""
NO_SKIPS = "[environments.dev]\nallow_skips = false\nrollback = 'undo {env}'\n"
PASSING = "import pytest\n@pytest.mark.dev\ndef test_ok(): pass\n"


def blocking_run(run_and_parse: RunAndParse, conftest: str) -> tuple[pytest.RunResult, Report]:
    pytester = run_and_parse.pytester
    pytester.makefile(".toml", promotion=NO_SKIPS)
    pytester.makepyfile(test_g=SKIPPING)
    pytester.makeconftest(conftest)
    return run_and_parse("--env=dev", subprocess=True)


# -- the exit status: before pytest_sessionfinish, and at the very end --------------------
@pytest.mark.integration
def test_sessionfinish_is_handed_the_status_of_the_decision(
    run_and_parse: RunAndParse,
) -> None:
    # A common fix for hangs at exit: leave with the status pytest hands over.
    result, report = blocking_run(
        run_and_parse,
        """
        import os
        def pytest_sessionfinish(session, exitstatus):
            print("handed", int(exitstatus), flush=True)
            os._exit(exitstatus)
        """,
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*handed 1"])
    assert report["decision"] == "block"


@pytest.mark.parametrize(
    "hook",
    [
        "def pytest_unconfigure(config):\n    sys.exit(0)",
        "@pytest.hookimpl(trylast=True)\n"
        "def pytest_sessionfinish(session):\n    pytest.exit('done', returncode=0)",
    ],
    ids=["sys.exit-in-unconfigure", "pytest.exit-in-sessionfinish"],
)
@pytest.mark.integration
def test_a_later_hook_cannot_exit_0_on_a_block(run_and_parse: RunAndParse, hook: str) -> None:
    result, report = blocking_run(run_and_parse, f"import sys, pytest\n{hook}\n")
    assert result.ret == 1
    assert report["decision"] == "block"


@pytest.mark.integration
def test_waived_failures_exit_0_before_sessionfinish(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makeconftest(
        """
        def pytest_sessionfinish(session, exitstatus):
            print("handed", int(exitstatus), flush=True)
        """
    )
    pytester.makepyfile(
        "import pytest\n@pytest.mark.dev\n@pytest.mark.gate(name='lint')\n"
        "def test_lint(): assert False\n"
    )
    result, report = run_and_parse("--env=dev", "--waive=lint=JIRA-12", subprocess=True)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*handed 0"])
    assert report["decision"] == "promote"


# -- pytest_promotion_finalize: reasons block, a raise blocks -------------------------------
def test_finalize_hook_reasons_block(pytester: pytest.Pytester, run_and_parse: RunAndParse) -> None:
    pytester.makeconftest(
        """
        def pytest_promotion_finalize(config, decision):
            return ["outside the change window"]
        """
    )
    pytester.makepyfile(PASSING)
    result, report = run_and_parse("--env=dev")
    assert result.ret == 1
    assert report["reasons"] == ["outside the change window"]


def test_finalize_hook_cannot_promote(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makeconftest("def pytest_promotion_finalize(config, decision):\n    return []\n")
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_bad(): assert False\n")
    result, report = run_and_parse("--env=dev")
    assert result.ret == 1
    assert report["decision"] == "block"


@pytest.mark.parametrize(
    "hook",
    [
        "pytest_promotion_finalize(config, decision)",
        "pytest_promotion_decision(config, decision)",
    ],
)
@pytest.mark.integration
def test_a_hook_that_raises_on_a_promote_blocks(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hook: str
) -> None:
    pytester.makefile(".toml", promotion="[environments.dev]\nrollback = 'undo {env}'\n")
    pytester.makeconftest(f"def {hook}:\n    raise RuntimeError('chat\\nserver down')\n")
    pytester.makepyfile(PASSING)
    result, data = run_and_parse("--env=dev", "--junitxml=gate.xml", subprocess=True)
    assert result.ret == 1
    name = hook.partition("(")[0]
    line = f"the {name} hook raised RuntimeError: chat server down"
    assert data["decision"] == "block"
    assert data["reasons"] == [line]
    assert data["rollback_command"] == "undo dev"
    assert 'name="promotion.decision" value="block"' in (pytester.path / "gate.xml").read_text()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([f"*reason: {line}", "rollback command: undo dev"])


@pytest.mark.integration
def test_rollback_command_hook_that_raises(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makefile(".toml", promotion="[environments.dev]\nrollback = 'undo {env}'\n")
    pytester.makeconftest(
        "def pytest_promotion_rollback_command(config, environment, decision):\n"
        "    raise KeyError('helm')\n"
    )
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_bad(): assert False\n")
    result, data = run_and_parse("--env=dev", "--junitxml=gate.xml", subprocess=True)
    assert result.ret == 1
    assert data["decision"] == "block"
    assert "the pytest_promotion_rollback_command hook raised KeyError: 'helm'" in data["reasons"]
    assert data["rollback_command"] == "undo dev"  # the configured template, still
    assert (pytester.path / "gate.xml").exists()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# -- report paths, checked when the run starts ----------------------------------------------
def test_empty_promotion_env_does_not_leave_an_old_promote(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / "decision.json").write_text('{"decision": "promote"}')
    monkeypatch.setenv("PROMOTION_ENV", "")
    pytester.makepyfile(PASSING)
    result, report = run_and_parse()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --promotion-report needs a target environment*"])
    assert report["decision"] == "block"


def test_same_file_for_json_and_junit_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--env=dev", "--promotion-report=out.xml", "--junitxml=out.xml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --promotion-report out.xml: the same file as --junitxml*"])


def test_a_fifo_is_never_replaced(pytester: pytest.Pytester) -> None:
    os.mkfifo(pytester.path / "pipe")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--env=dev", "--promotion-report=pipe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --promotion-report */pipe: not a regular file*"])
    assert stat.S_ISFIFO((pytester.path / "pipe").stat().st_mode)


@pytest.mark.parametrize("option", ["--promotion-report", "--junitxml"])
@pytest.mark.integration
def test_unwritable_report_path_is_a_usage_error(pytester: pytest.Pytester, option: str) -> None:
    # Under a regular file: unwritable even as root.
    (pytester.path / "file").write_text("")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess("--env=dev", f"{option}=file/out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option} */file/out: */file: not a directory"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_missing_report_directory_is_not_created(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--env=dev", "--promotion-report=missing/decision.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *missing: no such directory (not created)"])
    assert not (pytester.path / "missing").exists()


def test_github_output_checked_at_start(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / "file").write_text("")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(pytester.path / "file" / "out"))
    pytester.makepyfile(PASSING)
    result, report = run_and_parse("--env=dev")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: $GITHUB_OUTPUT */file/out: */file: no such directory"])
    assert report["decision"] == "block"


# -- an internal error before the session: masked, and the decision still shown -------------
@pytest.mark.integration
def test_internal_error_in_sessionstart_is_masked_and_decided(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "tok-SECRET-123")
    pytester.makefile(
        ".toml",
        promotion="[environments.dev]\nvars = { token = '${API_TOKEN}' }\nrollback = 'undo {env}'\n",
    )
    pytester.makeconftest(
        """
        import os
        def pytest_sessionstart(session):
            raise ConnectionError("https://deploy:" + os.environ["API_TOKEN"] + "@db:5432 refused")
        """
    )
    pytester.makepyfile(PASSING)
    result, report = run_and_parse("--env=dev", subprocess=True)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR>" in output
    assert "tok-SECRET-123" not in output
    result.stdout.fnmatch_lines(
        ["decision: BLOCK -> dev", "*reason: internal error: *", "rollback command: undo dev"]
    )
    assert "tok-SECRET-123" not in (pytester.path / "decision.json").read_text()
    assert report["rollback_command"] == "undo dev"


# -- xdist: what the workers selected reaches the controller -------------------------------
@pytest.mark.integration
def test_selection_counts_under_xdist(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.staging
        def test_gate(): pass
        @pytest.mark.prod
        def test_prod_only(): pass
        def test_unit_a(): pass
        def test_unit_b(): pass
        """
    )
    result, report = run_and_parse("--env=staging", "-n", "2", subprocess=True)
    assert result.ret == 0
    assert report["selection"] == {
        "selected": 1,
        "deselected_other_environments": 1,
        "deselected_unmarked": 2,
    }
    result.stdout.fnmatch_lines(
        [
            "promotion: 1 gate selected for staging, 1 deselected (other environments), "
            "2 deselected (no environment marker: not a gate)"
        ]
    )


# -- waivers: the name as written ----------------------------------------------------------
def test_waiver_with_the_check_name_as_written(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makefile(
        ".toml",
        promotion="""
        [[environments.staging.checks]]
        name = "agent-health"
        command = ["false"]
        """,
    )
    result, data = run_and_parse("--env=staging", "--waive=agent-health=INC-7 known")
    assert result.ret == 0
    assert data["decision"] == "promote"
    assert data["waivers"] == [{"gate": "agent-health", "reason": "INC-7 known", "used": True}]


# -- smaller ones ---------------------------------------------------------------------------
def test_unknown_environment_names_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMOTION_ENV", "stage")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: PROMOTION_ENV stage: unknown environment*"])


def test_text_measurement_is_not_a_number(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(
        "import pytest\n@pytest.mark.dev\ndef test_cov(gate):\n    gate.measure('57.2', min=60)\n"
    )
    _, report = run_and_parse("--env=dev")
    (gate,) = report["gates"]
    assert "not a number ('57.2')" in gate["message"]


def test_passing_gate_keeps_its_message_and_trigger(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(
        "import pytest\n@pytest.mark.dev\n@pytest.mark.gate(trigger='rollback')\n"
        "def test_cov(gate):\n    gate.measure(72, min=60)\n    gate.message = 'coverage ok'\n"
    )
    _, report = run_and_parse("--env=dev")
    (gate,) = report["gates"]
    assert gate["rollback_trigger"] is True
    assert gate["message"] == "coverage ok"


def test_report_file_path_type(tmp_path: Path) -> None:
    # The helpers take and give pathlib paths (no str round trips in callers).
    from pytest_promotion.outputs import junit_path

    assert junit_path(str(tmp_path / "a" / ".." / "g.xml")) == tmp_path / "g.xml"


def test_declarative_checks_are_counted_as_collected(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion='[[environments.staging.checks]]\nname = "agent-health"\ncommand = ["true"]\n',
    )
    pytester.makepyfile(
        "import pytest\n@pytest.mark.staging\ndef test_a(): pass\ndef test_unit(): pass\n"
    )
    result = pytester.runpytest("--env=staging", "-k", "test_a")
    result.stdout.fnmatch_lines(["collected 3 items / 2 deselected / 1 selected"])


# -- warnings about a gate's own result fail it ----------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    return False", "*PytestReturnNotNoneWarning*"),
        ("    return True", "*PytestReturnNotNoneWarning*"),
        (
            "    import threading\n"
            "    t = threading.Thread(target=lambda: 1 / 0)\n    t.start()\n    t.join()",
            "*PytestUnhandledThreadExceptionWarning*",
        ),
        (
            "    class Broken:\n        def __del__(self):\n            raise OSError('check')\n"
            "    Broken()\n    import gc\n    gc.collect()",
            "*PytestUnraisableExceptionWarning*",
        ),
    ],
    ids=["return-false", "return-true", "thread", "unraisable"],
)
@pytest.mark.integration
def test_a_warning_about_the_gate_result_fails_it(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, body: str, expected: str
) -> None:
    pytester.makepyfile(f"import pytest\n@pytest.mark.dev\ndef test_health():\n{body}\n")
    result, report = run_and_parse("--env=dev", subprocess=True)
    assert result.ret == 1
    assert report["decision"] == "block"
    result.stdout.fnmatch_lines([expected])
    # Without a target environment pytest only warns, as before.
    assert pytester.runpytest_subprocess().ret == 0


# -- gate files excluded from collection make the run partial, like -k ----------------------
@pytest.mark.parametrize(
    ("args", "conftest"),
    [
        (["--ignore=gates/test_health.py"], ""),
        (["--ignore-glob=*health*"], ""),
        ([], "collect_ignore = ['gates/test_health.py']"),
        (
            [],
            "def pytest_ignore_collect(collection_path, config):\n"
            "    return True if collection_path.name == 'test_health.py' else None",
        ),
        (["--ignore=gates/test_health.py", "-n", "2"], ""),
    ],
    ids=["--ignore", "--ignore-glob", "collect_ignore", "plugin-hook", "xdist"],
)
@pytest.mark.integration
def test_an_excluded_gate_file_makes_prod_partial(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, args: list[str], conftest: str
) -> None:
    pytester.mkpydir("gates")
    (pytester.path / "gates" / "test_health.py").write_text(
        "import pytest\n@pytest.mark.prod\ndef test_health(): assert False\n"
    )
    (pytester.path / "gates" / "test_ok.py").write_text(
        "import pytest\n@pytest.mark.prod\ndef test_ok(): pass\n"
    )
    pytester.makeconftest(conftest)
    pytester.makefile(".toml", promotion=CHAIN)  # prod, the last: a config is required
    result, data = run_and_parse("--env=prod", *args, subprocess=True)
    assert result.ret == 1
    assert data["decision"] == "block"
    assert any(
        "excluded from collection" in r and "test_health.py" in r and "cannot promote prod" in r
        for r in data["reasons"]
    ), data["reasons"]


def test_defaults_and_non_test_paths_do_not_make_a_run_partial(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.mkdir("build")  # norecursedirs
    (pytester.path / "build" / "test_old.py").write_text("def test_old(): pass\n")
    (pytester.path / "setup.py").write_text("")
    pytester.makeconftest("collect_ignore = ['setup.py']")
    pytester.makepyfile("import pytest\n@pytest.mark.prod\ndef test_ok(): pass\n")
    pytester.makefile(".toml", promotion=CHAIN)
    result, report = run_and_parse("--env=prod")
    assert result.ret == 0
    assert report["warnings"] == []


def test_a_passing_check_shows_the_trigger_of_its_kind(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        pytester.makefile(
            ".toml",
            promotion=f"""
            [[environments.staging.checks]]
            name = "db-port"
            tcp = "127.0.0.1:{port}"

            [[environments.staging.checks]]
            name = "smoke"
            command = ["true"]
            trigger = "rollback"

            [[environments.staging.checks]]
            name = "lint"
            command = ["true"]
            """,
        )
        result, report = run_and_parse("--env=staging", "--junitxml=gate.xml")
    assert result.ret == 0
    triggers = {g["name"]: g["rollback_trigger"] for g in report["gates"]}
    assert triggers == {"staging::db-port": True, "staging::smoke": True, "staging::lint": False}
    xml = (pytester.path / "gate.xml").read_text()
    assert xml.count('name="promotion.trigger" value="rollback"') == 2


# -- the one function the exit status comes from --------------------------------------------
def _decision(verdict: Verdict, usage_error: bool = False) -> Decision:
    return Decision(
        decision=verdict,
        environment="prod",
        version=None,
        reasons=[],
        gates=[],
        waivers=[],
        usage_error=usage_error,
    )


@pytest.mark.parametrize(
    ("verdict", "usage_error", "pytest_status", "expected"),
    [
        (None, False, 0, 3),  # no decision: never 0
        (None, False, 2, 2),
        ("promote", False, 0, 0),
        ("promote", False, 1, 0),  # every failure carries a waiver, or it would not promote
        ("block", False, 0, 1),
        ("rollback", False, 0, 1),
        ("block", False, 2, 2),  # interrupted stays interrupted
        ("block", False, 5, 5),
        ("block", True, 1, 4),  # a usage error found at collection
    ],
)
def test_exit_status_table(
    verdict: Verdict | None, usage_error: bool, pytest_status: int, expected: int
) -> None:
    from pytest_promotion.finalise import exit_status

    decision = None if verdict is None else _decision(verdict, usage_error)
    assert exit_status(decision, pytest_status) == expected


def test_a_finalising_step_never_promotes() -> None:
    from pytest_promotion.finalise import block

    assert block(_decision("block")).decision == "block"
    assert block(_decision("promote"), "late").decision == "block"
    assert block(_decision("rollback"), "late").decision == "rollback"
    assert block(_decision("promote")).decision == "promote"  # no reason, no change
