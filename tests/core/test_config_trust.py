"""The config a run uses, and what it refuses at start (issue 11: items 1, 2, 6, 7, 15, 16,
24, 29): where it is found, aliases as one name, values that cannot work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports import read
from tests.support import free_port

GATE = "import pytest\n\n@pytest.mark.dev\ndef test_ok():\n    pass\n"


def repository(pytester: pytest.Pytester, toml: str) -> Path:
    """A repository (``.git``) with ``toml`` at its root and the gates in ``gates/``."""
    (pytester.path / ".git").mkdir()
    (pytester.path / "promotion.toml").write_text(toml)
    gates = pytester.path / "gates"
    gates.mkdir()
    (gates / "test_gates.py").write_text(GATE)
    return gates


FAILING_PROD = (
    '[environments.prod]\nrollback = "deploy undo {env}"\n'
    f'[[environments.prod.checks]]\nname = "health"\ntcp = "127.0.0.1:{free_port()}"\ntimeout = 1\n'
)


# -- 1. discovery --------------------------------------------------------------------------
@pytest.mark.integration
def test_config_above_a_pytest_ini_next_to_the_gates_is_found(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    gates = repository(pytester, FAILING_PROD)
    (gates / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.chdir(gates)  # rootdir = gates/ (its pytest.ini)
    result = pytester.runpytest_subprocess("--env=prod", "--promotion-report=d.json")
    assert result.ret != 0
    assert read(gates / "d.json")["decision"] == "rollback"
    assert read(gates / "d.json")["rollback_command"] == "deploy undo prod"
    result.stdout.fnmatch_lines(
        [f"promotion: dev -> staging -> [prod] (config: {pytester.path}/promotion.toml)"]
    )


@pytest.mark.integration
def test_config_in_the_invocation_directory_is_found_with_dash_c(
    pytester: pytest.Pytester,
) -> None:
    gates = repository(pytester, FAILING_PROD)
    (gates / "pytest.ini").write_text("[pytest]\n")
    result = pytester.runpytest_subprocess("-c", "gates/pytest.ini", "--env=prod", "gates")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*(config: promotion.toml)*", "decision: ROLLBACK*"])


@pytest.mark.integration
def test_promotion_toml_wins_over_pyproject_in_one_directory_and_rootdir_wins_over_parents(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    gates = repository(pytester, '[promotion]\nenvironments = ["dev", "parent"]\n')
    (pytester.path / "pyproject.toml").write_text(
        '[tool.promotion.promotion]\nenvironments = ["dev", "pyproject"]\n'
    )
    (gates / "pyproject.toml").write_text(
        '[tool.promotion.promotion]\nenvironments = ["dev", "gates"]\n'
    )
    monkeypatch.chdir(gates)
    result = pytester.runpytest_subprocess("--env=dev")
    assert "promotion: [dev] -> gates (config: pyproject.toml)" in result.outlines
    (gates / "pyproject.toml").write_text("[tool.other]\n")  # no [tool.promotion]: go up
    result = pytester.runpytest_subprocess("--env=dev")
    header = f"promotion: [dev] -> parent (config: {pytester.path}/promotion.toml)"
    assert header in result.outlines, result.stdout.str()


@pytest.mark.integration
def test_relative_paths_resolve_from_the_config_files_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    gates = repository(
        pytester,
        '[environments.dev]\ndotenv = "env/dev.env"\nbase_url = "https://${API_HOST}"\n',
    )
    (pytester.path / "env").mkdir()
    (pytester.path / "env" / "dev.env").write_text("API_HOST=api.dev.test\n")
    (gates / "test_gates.py").write_text(
        "import pytest\n\n@pytest.mark.dev\ndef test_url(promotion_env):\n"
        "    assert promotion_env.base_url == 'https://api.dev.test'\n"
    )
    monkeypatch.chdir(gates)
    monkeypatch.delenv("API_HOST", raising=False)
    result = pytester.runpytest_subprocess("--env=dev")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()


@pytest.mark.integration
def test_no_config_for_the_last_environment_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(GATE)
    result = pytester.runpytest_subprocess("--env=prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --env prod: no config file found (looked for promotion.toml *--promotion-config=none*"
        ]
    )
    result = pytester.runpytest_subprocess("--env=prod", "--promotion-config=none")
    assert result.ret == 0


@pytest.mark.integration
def test_no_config_elsewhere_is_a_warning_in_every_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(GATE)
    result = pytester.runpytest_subprocess(
        "--env=staging", "--promotion-report=d.json", "--junitxml=j.xml"
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(["promotion: WARNING: no config file found (looked for *"])
    warnings = read(pytester.path / "d.json")["warnings"]
    assert warnings and warnings[0].startswith("no config file found")
    assert "no config file found" in (pytester.path / "j.xml").read_text()


# -- 2. aliases ----------------------------------------------------------------------------
ALIASED = '[promotion]\nenvironments = ["development", "staging", "production"]\n'


@pytest.mark.parametrize("marker", ["production", "prod"])
@pytest.mark.integration
def test_a_production_gate_is_a_gate_of_a_chain_that_says_production(
    pytester: pytest.Pytester, marker: str
) -> None:
    pytester.makefile(
        ".toml",
        promotion=ALIASED
        + '[environments.production]\nrollback = "deploy --field environment={env}"\n',
    )
    pytester.makepyfile(
        f"import pytest\n\n@pytest.mark.{marker}\ndef test_prod():\n    assert False\n"
    )
    result = pytester.runpytest_subprocess("--env=prod", "--promotion-report=d.json")
    assert result.ret != 0
    data = read(pytester.path / "d.json")
    assert data["environment"] == "production"
    assert [g["outcome"] for g in data["gates"]] == ["failed"]
    # {env} is the chain's own spelling: what the seed's workflow expects
    assert data["rollback_command"] == "deploy --field environment=production"


@pytest.mark.integration
def test_two_tables_for_one_environment_are_a_config_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion=ALIASED
        + "[environments.production]\ntimeout = 3\n[environments.prod]\ntimeout = 4\n",
    )
    pytester.makepyfile(GATE)
    result = pytester.runpytest_subprocess("--env=development")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: promotion.toml: [environments.prod] and [environments.production] are the "
            "same environment (production): keep one table"
        ]
    )


# -- 6, 7. values that cannot work are refused at start ------------------------------------
@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[environments.staging]\nbase_url = "https://127.0.0.1:99999"\n',
            "ERROR: promotion.toml: [[]environments.staging] key 'base_url': expected a URL with "
            "a port from 1 to 65535, found 'https://127.0.0.1:99999' (Port out of range*",
        ),
        (
            '[environments.staging]\nredis = "redis://:pw-secret@127.0.0.1:99999/0"\n',
            "ERROR: promotion.toml: [[]environments.staging] key 'redis': expected a URL with "
            "a port from 1 to 65535, found 'redis://:***@127.0.0.1:99999/0' *",
        ),
        (
            '[[environments.staging.checks]]\nname = "h"\nhttp = "https://127.0.0.1:99999/x"\n',
            "ERROR: promotion.toml: [[][[]environments.staging.checks]] 'h' key 'http': "
            "expected a URL with a port from 1 to 65535, found 'https://127.0.0.1:99999/x' *",
        ),
        (
            '[[environments.staging.checks]]\nname = "h"\nhttp = "https://h.test/"\ntimeout = 1e308\n',
            "ERROR: promotion.toml: [[environments.staging.checks]] 'h': key 'timeout': expected "
            "a number of seconds > 0 and <= 86400, found 1e+308",
        ),
        (
            "[environments.staging]\ntimeout = 1e308\n",
            "ERROR: promotion.toml: [environments.staging] key 'timeout': expected a number of "
            "seconds > 0 and <= 86400, found 1e+308",
        ),
        (
            '[[environments.staging.checks]]\nname = "h"\nhttp = "/health"\n',
            "ERROR: promotion.toml: [[environments.staging.checks]] 'h' key 'http': '/health' is "
            "a path, but [environments.staging] has no base_url (set base_url, or give a full URL)",
        ),
    ],
)
@pytest.mark.integration
def test_values_that_cannot_work_are_config_errors_at_start(
    pytester: pytest.Pytester, toml: str, expected: str
) -> None:
    pytester.makefile(".toml", promotion=toml)
    pytester.makepyfile(GATE)
    result = pytester.runpytest_subprocess("--env=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()
    validate = subprocess.run(
        [sys.executable, "-m", "pytest_promotion.cli", "validate"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert validate.returncode == 4, validate.stdout


def test_a_crash_of_the_http_check_itself_blocks_not_rolls_back(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        from pytest_promotion.checks import http

        def broken(spec, target):
            raise OverflowError("timeout value is too large")

        def pytest_configure(config):
            config._saved, http._run = http._run, broken

        def pytest_unconfigure(config):
            http._run = config._saved
        """
    )
    pytester.makefile(
        ".toml",
        promotion='[environments.staging]\nbase_url = "https://h.test"\n'
        'rollback = "deploy undo"\n'
        '[[environments.staging.checks]]\nname = "health"\nhttp = "/health"\n',
    )
    result = pytester.runpytest("--env=staging", "--promotion-report=d.json")
    assert result.ret != 0
    data = read(pytester.path / "d.json")
    assert data["decision"] == "block"  # no evidence about the environment
    assert [g["rollback_trigger"] for g in data["gates"]] == [False]
    result.stdout.fnmatch_lines(
        ["*http check crashed (OverflowError: timeout value is too large)*"]
    )


# -- 15, 16. what is a secret --------------------------------------------------------------
@pytest.mark.integration
def test_a_secret_too_short_to_mask_is_a_config_error_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "x7")
    pytester.makefile(
        ".toml",
        promotion='[environments.staging]\nvars = { password = "${DB_PASSWORD}" }\n',
    )
    pytester.makepyfile(GATE)
    result = pytester.runpytest_subprocess("--env=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: promotion.toml: [environments.staging] key 'vars.password': ${DB_PASSWORD} has 2 "
            'character(s), too short to mask as a secret (list it in public = ["DB_PASSWORD"] '
            "if it is not a secret)"
        ]
    )
    assert "x7" not in result.stderr.str()


@pytest.mark.integration
def test_public_values_are_not_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACE", "staging")
    monkeypatch.setenv("API_HOST", "api.staging.test")
    monkeypatch.setenv("ID", "7")
    monkeypatch.setenv("TOKEN", "s3cret-token")
    pytester.makefile(
        ".toml",
        promotion='[environments.staging]\npublic = ["NAMESPACE", "API_HOST", "ID"]\n'
        'base_url = "https://${API_HOST}"\n'
        'vars = { id = "${ID}", token = "${TOKEN}" }\n'
        'rollback = "helm rollback agent --namespace ${NAMESPACE}"\n',
    )
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.dev\ndef test_url(promotion_env):\n"
        "    assert promotion_env.base_url == 'nope', promotion_env.vars['token']\n"
    )
    result = pytester.runpytest_subprocess("--env=staging", "--promotion-report=d.json")
    data = read(pytester.path / "d.json")
    assert data["rollback_command"] == "helm rollback agent --namespace staging"
    out = result.stdout.str()
    assert "https://api.staging.test" in out  # an ordinary host name stays readable
    assert "s3cret-token" not in out and "***" in out


# -- 24. a dotenv file that is absent ------------------------------------------------------
@pytest.mark.integration
def test_absent_dotenv_file_is_fine_when_every_variable_resolves(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_HOST", "api.from-ci.test")
    pytester.makefile(
        ".toml",
        promotion='[environments.staging]\ndotenv = ".env.staging"\nbase_url = "https://${API_HOST}"\n',
    )
    pytester.makepyfile(GATE)
    result = pytester.runpytest_subprocess("--env=staging")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            "promotion: dotenv file .env.staging not found: variables come from the process environment"
        ]
    )


# -- 29. where a missing variable is, and plain http ---------------------------------------
@pytest.mark.integration
def test_a_missing_variable_in_a_check_is_reported_against_the_check(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(
        ".toml",
        promotion='[[environments.staging.checks]]\nname = "cache"\nredis = "redis://:${NOPE_PW}@h:6379/0"\n',
    )
    pytester.makepyfile(GATE)
    result = pytester.runpytest_subprocess("--env=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: promotion.toml: [[environments.staging.checks]] 'cache' key 'redis': "
            "${NOPE_PW} is not set (expected in the process environment)"
        ]
    )


@pytest.mark.integration
def test_a_plain_http_base_url_is_a_warning_in_every_report(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", promotion='[environments.staging]\nbase_url = "http://h.test"\n')
    pytester.makepyfile(GATE)
    result = pytester.runpytest_subprocess("--env=staging", "--promotion-report=d.json")
    assert result.ret == 0
    line = "TLS is not used for staging: base_url http://h.test is http:// (use https://, or set insecure = true to say it is on purpose)"
    result.stdout.fnmatch_lines([f"promotion: WARNING: {line}"])
    assert read(pytester.path / "d.json")["warnings"] == [line]
