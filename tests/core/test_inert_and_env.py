"""Without a target the plugin is invisible; with one, the name is validated first."""

from __future__ import annotations

import pytest

from tests.reports import RunAndParse

SUITE = """
import pytest

@pytest.mark.dev
def test_gate():
    pass

def test_plain():
    pass

def test_failing():
    assert 1 == 2
"""


def _strip_timing(lines: list[str]) -> list[str]:
    return [line.split(" in ")[0] for line in lines]


@pytest.mark.integration
def test_inert_without_env_runs_suite_exactly_as_without_plugin(pytester: pytest.Pytester) -> None:
    # No environment markers here: without the plugin they would warn as unknown.
    pytester.makepyfile(SUITE.replace("@pytest.mark.dev", ""))
    with_plugin = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "-p", "no:promotion")
    assert with_plugin.ret == without.ret == 1
    with_plugin.assert_outcomes(passed=2, failed=1)
    assert "promotion:" not in with_plugin.stdout.str()

    # The header names the installed plugins; everything from "collected" on must match.
    def body(lines: list[str]) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith("collected"))
        return _strip_timing(lines[start:])

    assert body(with_plugin.outlines) == body(without.outlines)


def test_inert_with_markers_same_outcomes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == 1
    assert "promotion:" not in result.stdout.str()


def test_markers_registered_under_strict_markers_without_env(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--strict-markers", "-k", "not failing")
    result.assert_outcomes(passed=2)
    assert result.ret == 0


@pytest.mark.parametrize("how", ["cli", "envvar", "ini"])
def test_target_from_cli_envvar_or_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_and_parse: RunAndParse, how: str
) -> None:
    pytester.makepyfile(SUITE)
    args = ["-k", "gate"]
    if how == "cli":
        args.append("--env=staging")
    elif how == "envvar":
        monkeypatch.setenv("PROMOTION_ENV", "staging")
    else:
        pytester.makeini("[pytest]\npromotion_env = staging\n")
    result, report = run_and_parse(*args)
    assert result.ret == 0
    assert report["environment"] == "staging"


def test_cli_wins_over_envvar(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(SUITE)
    monkeypatch.setenv("PROMOTION_ENV", "prod")
    _, report = run_and_parse("--env=dev", "-k", "gate")
    assert report["environment"] == "dev"


def test_unknown_environment_is_a_usage_error_listing_known(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--env=qa")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--env qa: unknown environment (known: dev, staging, prod*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize(
    "value", ["prod; id", "$(id)", "prod\nid", "--kubeconfig=x", "../prod", "", "a" * 65, "prod id"]
)
@pytest.mark.integration
def test_injection_shaped_names_refused_before_any_gate_runs(
    pytester: pytest.Pytester, value: str
) -> None:
    pytester.makepyfile(
        """
        import pytest, pathlib
        @pytest.mark.dev
        def test_gate():
            pathlib.Path("ran").write_text("yes")
        """
    )
    result = pytester.runpytest_subprocess(f"--env={value}" if value else "--env=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not (pytester.path / "ran").exists()


@pytest.mark.parametrize("value", ["prod; id", "$(id)", "x\ny"])
@pytest.mark.integration
def test_injection_shaped_names_refused_from_envvar(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    pytester.makepyfile(SUITE)
    monkeypatch.setenv("PROMOTION_ENV", value)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PROMOTION_ENV*is not an environment name*"])


def test_aliases_production_and_development(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makepyfile(SUITE)
    result, report = run_and_parse("--promotion-config=none", "--env=production", "-k", "gate")
    assert result.ret == 0
    assert report["environment"] == "prod"


def test_header_shows_environment_and_selection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--env=staging", "--promotion-version=1.4.0")
    assert (
        "promotion: dev -> [staging] -> prod (config: (no config file)), version 1.4.0"
        in result.outlines
    )
    assert (
        "promotion: 1 gate selected for staging, 2 deselected (no environment marker: not a gate)"
        in result.outlines
    )
