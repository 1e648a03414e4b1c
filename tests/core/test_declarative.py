"""Declarative checks from promotion.toml: one pytest item each, with its own id, JUnit
case and gate record (here with the tcp kind against real loopback sockets)."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.reports import RunAndParse
from tests.support import free_port


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_checks_become_items_with_env_ids(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, listening_port: int
) -> None:
    closed = free_port()
    pytester.makefile(
        ".toml",
        promotion=f"""
[environments.staging]
timeout = 1
rollback = "undo {{env}}"

[[environments.staging.checks]]
name = "db-port"
tcp = "127.0.0.1:{listening_port}"

[[environments.staging.checks]]
name = "cache-port"
tcp = "127.0.0.1:{closed}"
""",
    )
    result, report = run_and_parse("--env=staging", "--junitxml=gate.xml", "-v")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*staging::db-port PASSED*", "*staging::cache-port FAILED*"])
    assert report["decision"] == "rollback"  # a health check failure is a rollback trigger
    gates = {g["id"]: g for g in report["gates"]}
    assert gates["staging::db-port"]["outcome"] == "passed"
    assert (gates["staging::db-port"]["measured"] or "").endswith("ms")
    failed = gates["staging::cache-port"]
    assert failed["outcome"] == "failed"
    assert f"127.0.0.1:{closed}" in failed["message"]
    assert "refused" in failed["message"]
    assert report["rollback_command"] == "undo staging"
    cases = {
        c.get("name"): c for c in ET.parse(pytester.path / "gate.xml").getroot().iter("testcase")
    }
    assert set(cases) == {"db-port", "cache-port"}
    assert cases["cache-port"].find("failure") is not None


def test_check_failure_shows_one_line_not_a_traceback(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion=f'[[environments.dev.checks]]\nname = "p"\ntcp = "127.0.0.1:{free_port()}"\ntimeout = 1\n',
    )
    result = pytester.runpytest("--env=dev")
    out = result.stdout.str()
    assert "Traceback" not in out
    result.stdout.fnmatch_lines(["dev::p: *refused*"])


def test_a_check_that_crashes_fails_its_gate_in_one_line(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    # A check module raising instead of returning its Outcome is a bug of ours: the gate
    # fails (never passes), the run blocks, and the user gets one masked line to report.
    pytester.makeconftest(
        """
        from pytest_promotion.checks import tcp

        def broken(spec, target):
            raise ValueError("parsing https://admin:hunter2@db.internal/x went wrong")

        def pytest_configure(config):
            config._saved_tcp_run, tcp.run = tcp.run, broken

        def pytest_unconfigure(config):
            tcp.run = config._saved_tcp_run
        """
    )
    pytester.makefile(
        ".toml",
        promotion=f'[[environments.dev.checks]]\nname = "p"\ntcp = "127.0.0.1:{free_port()}"\n',
    )
    result, report = run_and_parse("--env=dev")
    out = result.stdout.str()
    assert result.ret != 0
    assert "Traceback" not in out and "hunter2" not in out
    result.stdout.fnmatch_lines(
        [
            "dev::p: tcp check crashed (ValueError: parsing https://admin:***@db.internal/x "
            "went wrong): a bug in pytest-promotion, please report it"
        ]
    )
    assert report["decision"] == "block"


def test_trigger_block_overrides_kind_default(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    pytester.makefile(
        ".toml",
        promotion=f'[[environments.dev.checks]]\nname = "p"\ntcp = "127.0.0.1:{free_port()}"\n'
        'trigger = "block"\ntimeout = 1\n',
    )
    _, report = run_and_parse("--env=dev")
    assert report["decision"] == "block"


def test_shared_checks_are_cumulative(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, listening_port: int
) -> None:
    pytester.makefile(
        ".toml",
        promotion=f"""
[environments.staging]
vars = {{ region = "x" }}

[[checks]]
name = "port"
from = "staging"
tcp = "127.0.0.1:{listening_port}"

[[checks]]
name = "dev-only"
environments = ["dev"]
tcp = "127.0.0.1:{listening_port}"
""",
    )
    ids = {}
    for env in ("dev", "staging", "prod"):
        _, report = run_and_parse(f"--env={env}")
        ids[env] = [g["id"] for g in report["gates"]]
    assert ids == {"dev": ["dev::dev-only"], "staging": ["staging::port"], "prod": ["prod::port"]}


def test_only_the_target_environment_checks_run(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, listening_port: int
) -> None:
    pytester.makefile(
        ".toml",
        promotion=f'[[environments.dev.checks]]\nname = "d"\ntcp = "127.0.0.1:{listening_port}"\n'
        f'[[environments.prod.checks]]\nname = "p"\ntcp = "127.0.0.1:{listening_port}"\n',
    )
    _, report = run_and_parse("--env=prod")
    assert [g["id"] for g in report["gates"]] == ["prod::p"]


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (
            'name = "x"\ntcp = "127.0.0.1:1"\nexpect_statuz = 200\n',
            "ERROR: promotion.toml: [[environments.staging.checks]] 'x': unknown key 'expect_statuz' for a tcp check*",
        ),
        (
            'name = "x"\n',
            "ERROR: promotion.toml: [[environments.staging.checks]] 'x': expected exactly one check kind*found none",
        ),
        (
            'name = "x"\ntcp = "127.0.0.1:1"\nhttp = "/h"\n',
            "ERROR: promotion.toml: [[environments.staging.checks]] 'x': expected exactly one check kind*found http, tcp",
        ),
        (
            'name = "x"\ntcp = "127.0.0.1:1"\ntrigger = "maybe"\n',
            "ERROR: promotion.toml: [[environments.staging.checks]] 'x': key 'trigger': expected \"rollback\" or \"block\", found 'maybe'",
        ),
        (
            'name = "x y"\ntcp = "127.0.0.1:1"\n',
            "ERROR: promotion.toml: * key 'name': expected letters*",
        ),
    ],
)
@pytest.mark.integration
def test_check_config_errors(pytester: pytest.Pytester, check: str, expected: str) -> None:
    import re

    pytester.makefile(".toml", promotion=f"[[environments.staging.checks]]\n{check}")
    result = pytester.runpytest_subprocess("--env=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(lines) == 1
    assert re.fullmatch(re.escape(expected).replace(r"\*", ".*"), lines[0]), lines[0]


def test_duplicate_check_names_are_refused(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion='[[environments.dev.checks]]\ntcp = "127.0.0.1:1"\n[[environments.dev.checks]]\ntcp = "127.0.0.1:2"\n',
    )
    result = pytester.runpytest("--env=dev")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*two checks named 'tcp' for dev (give each a unique 'name')"])


def test_collect_only_probes_nothing(pytester: pytest.Pytester) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        pytester.makefile(
            ".toml",
            promotion=f'[[environments.dev.checks]]\nname = "p"\ntcp = "127.0.0.1:{port}"\n',
        )
        result = pytester.runpytest("--env=dev", "--collect-only", "-q")
        result.stdout.fnmatch_lines(["dev::p"])
        with pytest.raises(TimeoutError):
            server.accept()


@pytest.mark.integration
def test_substituted_values_are_validated_once_resolved(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_ADDR", "cache-without-port")
    pytester.makefile(
        ".toml", promotion='[[environments.staging.checks]]\nname = "c"\ntcp = "${CACHE_ADDR}"\n'
    )
    result = pytester.runpytest_subprocess("--env=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(lines) == 1
    assert lines[0].startswith(
        "ERROR: promotion.toml: [[environments.staging.checks]] 'c': key 'tcp'"
    )
    assert "cache-without-port" not in lines[0]  # a ${VAR} value is a secret


@pytest.mark.integration
def test_static_mistake_in_another_environment_is_caught(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml", promotion='[[environments.prod.checks]]\nname = "c"\ntcp = "no-port"\n'
    )
    result = pytester.runpytest_subprocess("--env=dev")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(
        "[[environments.prod.checks]] 'c': key 'tcp'" in line for line in result.stderr.lines
    )


@pytest.mark.integration
def test_declarative_checks_under_xdist(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, listening_port: int
) -> None:
    checks = "".join(
        f'[[environments.staging.checks]]\nname = "p{i}"\ntcp = "127.0.0.1:{listening_port}"\n'
        for i in range(4)
    )
    pytester.makefile(".toml", promotion=checks)
    result, report = run_and_parse("--env=staging", "-n", "2", subprocess=True)
    assert result.ret == 0
    assert report["decision"] == "promote"
    assert sorted(g["id"] for g in report["gates"]) == [f"staging::p{i}" for i in range(4)]
    assert all((g["measured"] or "").endswith("ms") for g in report["gates"])
