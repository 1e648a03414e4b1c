"""The rollback command (rendered, printed, executed) and waivers instead of --force."""

from __future__ import annotations

import sys

import pytest

REPORT = "--promotion-report=decision.json"
FAILING = "import pytest\n@pytest.mark.dev\n@pytest.mark.gate(name='lint')\ndef test_lint():\n    assert False, 'lint failed'\n"
PASSING = "import pytest\n@pytest.mark.dev\ndef test_ok(): pass\n"


def config(pytester: pytest.Pytester, body: str) -> None:
    pytester.makefile(".toml", promotion=body)


def test_rollback_template_rendered_with_env_and_version(
    pytester: pytest.Pytester, read_report
) -> None:
    config(
        pytester,
        '[environments.staging]\nrollback = "gh workflow run environment-promotion.yml '
        '--field rollback=true --field environment={env} --field version={previous_version}"\n',
    )
    pytester.makepyfile(FAILING)
    result = pytester.runpytest(
        "--env=staging", REPORT, "--promotion-version=1.5.0", "--promotion-previous-version=1.4.2"
    )
    expected = (
        "gh workflow run environment-promotion.yml --field rollback=true "
        "--field environment=staging --field version=1.4.2"
    )
    assert result.ret == 1
    report = read_report()
    assert report["rollback_command"] == expected
    assert report["rollback"]["argv"][-1] == "version=1.4.2"
    result.stdout.fnmatch_lines([f"rollback command: {expected}"])


def test_promote_has_no_rollback_command(pytester: pytest.Pytester, read_report) -> None:
    config(pytester, '[environments.staging]\nrollback = "deploy --undo {env}"\n')
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--env=staging", REPORT)
    assert result.ret == 0
    assert read_report()["rollback_command"] is None
    assert "rollback command" not in result.stdout.str()


@pytest.mark.parametrize("version", ["1.0; rm -rf /", "$(id)", "--upload-pack=x", "a b"])
def test_hostile_version_is_never_put_into_the_command(
    pytester: pytest.Pytester, read_report, version: str
) -> None:
    config(pytester, '[environments.staging]\nrollback = ["deploy", "--version={version}"]\n')
    pytester.makepyfile(FAILING)
    result = pytester.runpytest("--env=staging", REPORT, f"--promotion-version={version}")
    assert result.ret == 1
    report = read_report()
    assert report["decision"] == "block"
    assert report["rollback_command"] is None
    assert any(
        "cannot be rendered" in w and "not a plain name or version" in w for w in report["warnings"]
    )


def test_missing_previous_version_is_reported_not_guessed(
    pytester: pytest.Pytester, read_report
) -> None:
    config(pytester, '[environments.staging]\nrollback = "deploy {previous_version}"\n')
    pytester.makepyfile(FAILING)
    pytester.runpytest("--env=staging", REPORT)
    report = read_report()
    assert report["rollback_command"] is None
    assert report["warnings"] == [
        "rollback command of staging cannot be rendered: {previous_version} is not known for this run"
    ]


def test_hook_supplies_the_rollback_command(pytester: pytest.Pytester, read_report) -> None:
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
    result = pytester.runpytest("--env=staging", REPORT, "-s")
    assert read_report()["rollback_command"] == "helm rollback agent --namespace staging"
    result.stdout.fnmatch_lines(["*NOTIFY staging block"])


def test_execute_runs_the_command_and_reports_its_output(
    pytester: pytest.Pytester, read_report
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
    result = pytester.runpytest(
        "--env=staging", REPORT, "--promotion-rollback=execute", "-p", "no:python_path"
    )
    assert (pytester.path / "rolled-back").read_text() == "staging"
    rollback = read_report()["rollback"]["result"]
    assert rollback["returncode"] == 3
    assert "rolled back staging" in rollback["output"]
    result.stdout.fnmatch_lines(["rollback executed: exit 3", "  | rolled back staging"])


def test_execute_has_a_deadline(pytester: pytest.Pytester, read_report) -> None:
    config(
        pytester,
        f"[environments.staging]\nrollback_timeout = 0.5\n"
        f'rollback = ["{sys.executable}", "-c", "import time; time.sleep(30)"]\n',
    )
    pytester.makepyfile(FAILING)
    pytester.runpytest("--env=staging", REPORT, "--promotion-rollback=execute")
    result = read_report()["rollback"]["result"]
    assert result["timed_out"] is True
    assert result["error"] == "timed out after 0.5 s"


def test_print_mode_never_runs_the_command(pytester: pytest.Pytester) -> None:
    config(
        pytester,
        f'[environments.staging]\nrollback = ["{sys.executable}", "-c", "open(\'ran\', \'w\')"]\n',
    )
    pytester.makepyfile(FAILING)
    pytester.runpytest("--env=staging")
    assert not (pytester.path / "ran").exists()


def test_waiver_turns_a_failure_into_a_recorded_waiver(
    pytester: pytest.Pytester, read_report
) -> None:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest(
        "--env=staging", REPORT, "--waive", "lint=JIRA-123 known false positive"
    )
    assert result.ret == 0
    report = read_report()
    assert report["decision"] == "promote"
    assert report["waivers"] == [
        {"gate": "lint", "reason": "JIRA-123 known false positive", "used": True}
    ]
    assert report["gates"][0]["waiver"] == "JIRA-123 known false positive"
    result.stdout.fnmatch_lines(["lint*WAIVED", "waiver: lint: JIRA-123 known false positive"])


def test_waiver_covers_only_its_gate(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(FAILING + "\n@pytest.mark.dev\ndef test_other():\n    assert False\n")
    result = pytester.runpytest("--env=staging", REPORT, "--waive", "lint=accepted")
    assert result.ret == 1
    assert read_report()["decision"] == "block"


def test_prod_forbids_waivers_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest("--env=prod", "--waive", "lint=please")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--waive lint: prod forbids waivers*"])


def test_waiver_for_unknown_gate_blocks(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--env=staging", REPORT, "--waive", "typo=reason")
    assert result.ret == 1
    assert read_report()["reasons"] == ["waiver for 'typo' names no selected gate"]


@pytest.mark.parametrize("value", ["lint", "=reason", "lint="])
def test_malformed_waiver_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--env=staging", "--waive", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
