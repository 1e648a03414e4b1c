"""Environment markers are cumulative along the chain; unmarked tests are not gates."""

from __future__ import annotations

import pytest

SUITE = """
import pytest

@pytest.mark.dev
def test_dev(): pass

@pytest.mark.staging
def test_staging(): pass

@pytest.mark.prod
def test_prod(): pass

@pytest.mark.staging(only=True)
def test_staging_only(): pass

def test_unmarked(): pass
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("dev", {"test_dev"}),
        ("staging", {"test_dev", "test_staging", "test_staging_only"}),
        ("prod", {"test_dev", "test_staging", "test_prod"}),
    ],
)
def test_cumulative_selection(
    pytester: pytest.Pytester, read_report, env: str, expected: set[str]
) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(
        "--promotion-config=none",
        f"--env={env}",
        "--strict-markers",
        "--promotion-report=decision.json",
    )
    assert result.ret == 0
    ran = {g["id"].split("::")[-1] for g in read_report()["gates"]}
    assert ran == expected
    result.assert_outcomes(passed=len(expected), deselected=5 - len(expected))


def test_custom_chain_registers_markers(pytester: pytest.Pytester, read_report) -> None:
    pytester.makefile(".toml", promotion='[promotion]\nenvironments = ["dev", "qa", "prod"]\n')
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.qa
        def test_qa(): pass
        @pytest.mark.dev
        def test_dev(): pass
        """
    )
    result = pytester.runpytest("--env=qa", "--strict-markers", "--promotion-report=decision.json")
    assert result.ret == 0
    assert len(read_report()["gates"]) == 2
    assert pytester.runpytest("--env=prod", "--strict-markers").ret == 0


def test_module_level_marker_marks_all_gates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.dev
        def test_a(): pass
        def test_b(): pass
        """
    )
    result = pytester.runpytest("--promotion-config=none", "--env=prod")
    result.assert_outcomes(passed=2)


def test_no_gate_selected_blocks(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile("def test_unmarked(): pass\ndef test_other(): pass\n")
    result = pytester.runpytest("--env=staging", "--promotion-report=decision.json")
    assert result.ret != 0
    report = read_report()
    assert report["decision"] == "block"
    assert report["reasons"] == [
        "no gate selected for staging (2 tests without an environment marker were deselected)"
    ]
    result.stdout.fnmatch_lines(["decision: BLOCK -> staging"])
    section = result.stdout.str().split("promotion: staging ==")[1]
    assert "measured" not in section  # no table header over no rows


def test_keyword_deselection_still_applies(pytester: pytest.Pytester, read_report) -> None:
    # -k still narrows the run; the gates it drops are said, and where skips are
    # forbidden (prod) a partial run cannot promote.
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(
        "--promotion-config=none", "--env=prod", "-k", "dev", "--promotion-report=decision.json"
    )
    report = read_report()
    assert [g["id"].split("::")[-1] for g in report["gates"]] == ["test_dev"]
    result.assert_outcomes(passed=1, deselected=4)
    assert result.ret == 1
    assert report["decision"] == "block"
    assert report["reasons"] == [
        "2 gates of prod were deselected (-k, -m, --deselect, --lf, --sw or a conftest): "
        "a partial run cannot promote prod (e.g. test_keyword_deselection_still_applies.py"
        "::test_staging, test_keyword_deselection_still_applies.py::test_prod)"
    ]
    result = pytester.runpytest(
        "--promotion-config=none", "--env=staging", "-k", "dev", "--promotion-report=decision.json"
    )
    report = read_report()
    assert [g["id"].split("::")[-1] for g in report["gates"]] == ["test_dev"]
    assert result.ret == 0
    assert report["decision"] == "promote"
    assert report["warnings"] == [
        "2 gates of staging were deselected (-k, -m, --deselect, --lf, --sw or a conftest): "
        "this run vouches only for the rest (e.g. test_keyword_deselection_still_applies.py"
        "::test_staging, test_keyword_deselection_still_applies.py::test_staging_only)"
    ]


def test_markers_of_modules_classes_and_tests_combine(
    pytester: pytest.Pytester, read_report
) -> None:
    # Siblings share their parents' markers; a test's own marker still counts for it alone.
    pytester.makepyfile(
        test_a="""
        import pytest
        pytestmark = pytest.mark.staging

        def test_inherits(): pass

        @pytest.mark.prod(only=True)
        def test_also_prod_only(): pass

        @pytest.mark.gate(name="own-name", trigger="rollback")
        def test_own_gate(): pass

        @pytest.mark.gate(name="class-gate", trigger="rollback")
        class TestGrouped:
            def test_one(self): pass

            @pytest.mark.dev
            def test_two(self): pass

        def test_after_class(): pass
        """,
        test_b="""
        import pytest

        def test_unmarked(): pass

        @pytest.mark.dev
        def test_dev(): pass
        """,
    )
    names = {
        "dev": {"TestGrouped::test_two", "test_dev"},
        "staging": {
            "test_inherits",
            "test_also_prod_only",
            "test_own_gate",
            "TestGrouped::test_one",
            "TestGrouped::test_two",
            "test_after_class",
            "test_dev",
        },
    }
    for env, expected in names.items():
        result = pytester.runpytest(f"--env={env}", "--promotion-report=decision.json")
        assert result.ret == 0
        gates = {g["id"].split("::", 1)[1]: g for g in read_report()["gates"]}
        assert set(gates) == expected
        result.assert_outcomes(passed=len(expected), deselected=8 - len(expected))
    grouped = gates["TestGrouped::test_one"]
    assert (grouped["name"], grouped["rollback_trigger"]) == ("class-gate", True)
    own = gates["test_own_gate"]
    assert (own["name"], own["rollback_trigger"]) == ("own-name", True)
    plain = gates["test_after_class"]
    assert (plain["name"], plain["rollback_trigger"]) == (plain["id"], False)
