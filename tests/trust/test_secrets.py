"""Secrets masked in every form pytest and the plugin show them: escaped (repr, JSON),
in a declarative check's headers, in gate.measure() values and gate names, in subtests
(issue 11, items 10 to 13 and 15)."""

from __future__ import annotations

import pytest

from pytest_promotion.redact import redact
from tests.reports import REPORT_OPTION

# Every secret holds CORE: a leak of any form of one (raw, repr-escaped, JSON-escaped,
# stripped) shows CORE somewhere.
CORE = "S3CRET-CORE"
NASTY = f"tok\\{CORE}\"-'q\n"  # a backslash, both quote kinds, a trailing newline

CONFIG = """
[environments.dev]
vars = {{ api_token = "${{API_TOKEN}}" }}
{extra}
"""


def leaks(pytester: pytest.Pytester, result: pytest.RunResult, core: str = CORE) -> list[str]:
    """Where ``core`` shows: the run's output, or a file the run wrote."""
    found = []
    if core in result.stdout.str():
        found.append("stdout")
    if core in result.stderr.str():
        found.append("stderr")
    for path in pytester.path.rglob("*"):
        skip = path.suffix in (".toml", ".py", ".env", ".pyc")
        if path.is_file() and not skip and core in path.read_text(errors="replace"):
            found.append(str(path.relative_to(pytester.path)))
    return found


@pytest.fixture
def nasty(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", NASTY)
    pytester.makefile(".toml", promotion=CONFIG.format(extra=""))


ARGS = ("--env=dev", "-rA", "--junitxml=j.xml", REPORT_OPTION)


@pytest.mark.integration
def test_escaped_forms_of_a_secret_are_masked(pytester: pytest.Pytester, nasty: None) -> None:
    """A plain assert shows the value's repr: `tok\\\\S3CRET...\\n'`, not the value."""
    pytester.makepyfile(
        test_g="""
        import json, pytest
        pytestmark = pytest.mark.dev

        def test_repr(promotion_env):
            assert promotion_env.vars["api_token"] == "expected"

        def test_json(promotion_env):
            assert False, json.dumps(promotion_env.vars["api_token"])

        def test_printed_stripped(promotion_env):
            print(promotion_env.vars["api_token"].strip())
            assert False
        """
    )
    result = pytester.runpytest_subprocess(*ARGS)
    assert result.ret == 1
    assert leaks(pytester, result) == []
    assert "***" in (pytester.path / "decision.json").read_text()


@pytest.mark.integration
def test_a_token_in_a_declarative_header_is_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", f"live-{CORE}-abcdef\n")
    pytester.makefile(
        ".toml",
        promotion=CONFIG.format(
            extra="""
            base_url = "http://127.0.0.1:9"
            [[environments.dev.checks]]
            name = "health"
            http = "/health"
            headers = { Authorization = "Bearer ${API_TOKEN}" }
            timeout = 2
            """
        ),
    )
    result = pytester.runpytest_subprocess(*ARGS)
    assert result.ret != 0
    assert leaks(pytester, result) == []


@pytest.mark.integration
def test_measured_values_and_gate_names_are_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", f"v-{CORE}")
    pytester.makefile(".toml", promotion=CONFIG.format(extra=""))
    pytester.makepyfile(
        test_g="""
        import os, pytest
        pytestmark = pytest.mark.dev
        TOKEN = os.environ["API_TOKEN"]

        @pytest.mark.gate(name=f"check {TOKEN}")
        def test_named(gate):
            gate.measure(TOKEN, threshold=TOKEN)

        def test_no_data(gate):
            gate.measure(TOKEN, min=1)

        def test_threshold(gate):
            gate.measure(3, threshold=f"below {TOKEN}")
        """
    )
    result = pytester.runpytest_subprocess(*ARGS)
    assert result.ret == 1
    assert leaks(pytester, result) == []


@pytest.mark.integration
def test_subtest_messages_and_arguments_are_masked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", f"v-{CORE}")
    pytester.makefile(".toml", promotion=CONFIG.format(extra=""))
    pytester.makepyfile(
        test_g="""
        import os, pytest
        pytestmark = pytest.mark.dev
        TOKEN = os.environ["API_TOKEN"]

        def test_sub(subtests):
            with subtests.test(msg=f"with {TOKEN}", token=TOKEN):
                assert False
            with subtests.test(msg=f"passing {TOKEN}", token=TOKEN):
                pass
        """
    )
    result = pytester.runpytest_subprocess(*ARGS, "-v")
    assert result.ret == 1
    assert leaks(pytester, result) == []


@pytest.mark.parametrize(
    ("text", "secrets", "shown"),
    [
        ("key abc here", ["abc"], "key *** here"),  # 3 characters: a whole token
        ("abcdef and xabc", ["abc"], "abcdef and xabc"),  # not inside another word
        ("'abc'", ["abc"], "'***'"),
        ("tok\\\\x\\n", ["tok\\x\n"], "***"),  # repr of a backslash and a newline
        ('"a\\"b\'c"', ["a\"b'c"], '"***"'),  # JSON form of both quote kinds
        ("'a\"b\\'c'", ["a\"b'c"], "'***'"),  # repr form of both quote kinds
        ("value: tok-1234", ["tok-1234\n"], "value: ***"),  # shown stripped
        ("ab", ["ab"], "ab"),  # 1-2 characters: a config error, never searched for
    ],
)
def test_redact_forms(text: str, secrets: list[str], shown: str) -> None:
    assert redact(text, secrets) == shown


@pytest.mark.integration
def test_a_three_character_secret_is_masked_as_a_whole_token(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values shorter than 4 characters were never masked, though the README said every
    value is: now 3 characters are, where they stand as a token."""
    monkeypatch.setenv("API_TOKEN", "q7z")
    pytester.makefile(".toml", promotion=CONFIG.format(extra=""))
    pytester.makepyfile(
        test_g="""
        import pytest
        pytestmark = pytest.mark.dev

        def test_pin(promotion_env):
            pin = promotion_env.vars["api_token"]
            print(f"pin {pin} in q7zebra")
            assert pin == "other"
        """
    )
    result = pytester.runpytest_subprocess(*ARGS)
    assert result.ret == 1
    out = result.stdout.str()
    assert "pin *** in q7zebra" in out  # a whole token masked, a word containing it not
    assert " q7z " not in out and "'q7z'" not in out
