"""Check kinds: one typed contract, one registry, and kinds from other packages.

The third-party kind below is a real package: a module and its ``.dist-info`` metadata
with a ``pytest_promotion.kinds`` entry point, put on the path of a pytest subprocess,
which is how ``pip install acme-kinds`` leaves it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pytest_promotion.checks import CheckKind, registry
from pytest_promotion.checks.base import CheckConfigError, Outcome, Target
from pytest_promotion.checks.registry import KindRegistry

# A kind of its own: reads a status file and expects a word in it.
ACME_KIND = '''
"""acme_kinds.status: the status file of a service says "ok"."""
import time

from pytest_promotion import CheckConfigError, Outcome

KEYS = {"status": str, "status_file": str, "expect": str, "hang": bool, "explode": bool}
ROLLBACK = True
CONCURRENT = True


def validate(spec, where):
    if "expect" in spec and not spec["expect"].strip():
        raise CheckConfigError(f"{where}: key 'expect': expected a word, found {spec['expect']!r}")


def run(spec, target):
    if spec.get("explode"):
        raise RuntimeError("reading https://ops:hunter22@status.internal failed")
    if spec.get("hang"):
        time.sleep(60)
    text = target.path(spec["status_file"]).read_text().strip()
    want = spec.get("expect", "ok")
    return Outcome(text == want, f"status is {text!r}, expected {want!r}", measured=text)
'''


def install_acme(root: Path) -> Path:
    """The package and its metadata in ``root/site``, as pip would install them."""
    site = root / "site"
    (site / "acme_kinds").mkdir(parents=True)
    (site / "acme_kinds" / "__init__.py").write_text("")
    (site / "acme_kinds" / "status.py").write_text(ACME_KIND)
    info = site / "acme_kinds-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-kinds\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest_promotion.kinds]\nstatus = acme_kinds.status\n")
    return site


@pytest.fixture
def acme(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = install_acme(pytester.path)
    monkeypatch.setenv("PYTHONPATH", str(site))
    return site


def toml(check: str, env: str = "staging", extra: str = "") -> str:
    return (
        f'[environments.{env}]\nrollback = "deploy undo {{env}}"\n{extra}'
        f"[[environments.{env}.checks]]\n{check}\n"
    )


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest_subprocess("--env=staging", "--promotion-report=d.json", *args)
    report_path = pytester.path / "d.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return result, report


@pytest.mark.integration
def test_a_kind_from_an_entry_point_runs_like_a_built_in_one(
    pytester: pytest.Pytester, acme: Path
) -> None:
    (pytester.path / "status.txt").write_text("ok\n")
    pytester.makefile(
        ".toml", promotion=toml('name = "api"\nstatus = "x"\nstatus_file = "status.txt"')
    )
    result, report = run(pytester)
    assert result.ret == 0, result.stdout.str()
    assert report["decision"] == "promote"
    assert [(g["id"], g["outcome"]) for g in report["gates"]] == [("staging::api", "passed")]


@pytest.mark.integration
def test_a_failing_third_party_check_rolls_back_with_its_message(
    pytester: pytest.Pytester, acme: Path
) -> None:
    (pytester.path / "status.txt").write_text("degraded\n")
    pytester.makefile(
        ".toml", promotion=toml('name = "api"\nstatus = "x"\nstatus_file = "status.txt"')
    )
    result, report = run(pytester)
    assert result.ret != 0
    assert report["decision"] == "rollback"  # the kind's ROLLBACK = True
    assert report["rollback_command"] == "deploy undo staging"
    result.stdout.fnmatch_lines(["*staging::api: status is 'degraded', expected 'ok'*"])


@pytest.mark.integration
def test_a_third_party_kind_gets_key_and_value_validation(
    pytester: pytest.Pytester, acme: Path
) -> None:
    pytester.makefile(".toml", promotion=toml('name = "api"\nstatus = "x"\nstatus_fil = "s"'))
    result, _ = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown key 'status_fil' for a status check (known keys: *"])
    pytester.makefile(
        ".toml", promotion=toml('name = "api"\nstatus = "x"\nstatus_file = "s"\nexpect = " "')
    )
    result, _ = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'api': key 'expect': expected a word, found ' '"])


@pytest.mark.integration
def test_a_crashing_third_party_kind_blocks_with_a_masked_line(
    pytester: pytest.Pytester, acme: Path
) -> None:
    pytester.makefile(
        ".toml", promotion=toml('name = "api"\nstatus = "x"\nstatus_file = "s"\nexplode = true')
    )
    result, report = run(pytester)
    out = result.stdout.str()
    assert report["decision"] == "block"  # no evidence about the environment: no rollback
    assert "hunter22" not in out and "Traceback" not in out
    result.stdout.fnmatch_lines(
        [
            "*status check crashed, a bug in entry point status = acme_kinds.status in acme-kinds 1.0"
            " (RuntimeError: reading https://ops:***@status.internal failed)*"
        ]
    )


@pytest.mark.integration
def test_a_hanging_third_party_kind_is_held_to_its_timeout(
    pytester: pytest.Pytester, acme: Path
) -> None:
    pytester.makefile(
        ".toml",
        promotion=toml('name = "api"\nstatus = "x"\nstatus_file = "s"\nhang = true\ntimeout = 0.5'),
    )
    result, report = run(pytester)
    assert report["decision"] == "block"
    result.stdout.fnmatch_lines(["*status check did not finish within its timeout (0.5 s)*"])


@pytest.mark.integration
def test_promotion_validate_knows_installed_kinds(pytester: pytest.Pytester, acme: Path) -> None:
    pytester.makefile(".toml", promotion=toml('name = "api"\nstatus = "x"\nstatus_fil = "s"'))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_promotion.cli", "validate"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "unknown key 'status_fil' for a status check" in proc.stdout + proc.stderr


@pytest.mark.integration
def test_a_conftest_adds_a_kind_through_the_hook(pytester: pytest.Pytester) -> None:
    (pytester.path / "acme_status.py").write_text(ACME_KIND)
    pytester.makeconftest(
        """
        import acme_status

        def pytest_promotion_add_kinds(config):
            return {"status": acme_status}
        """
    )
    (pytester.path / "status.txt").write_text("down\n")
    pytester.makefile(
        ".toml", promotion=toml('name = "api"\nstatus = "x"\nstatus_file = "status.txt"')
    )
    result, report = run(pytester)
    assert report["decision"] == "rollback"
    result.stdout.fnmatch_lines(["*staging::api: status is 'down', expected 'ok'*"])


@pytest.mark.integration
def test_a_kind_that_breaks_the_contract_is_a_config_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        class NoRollback:
            KEYS = {"odd": str}
            def run(self, spec, target): ...

        def pytest_promotion_add_kinds(config):
            return {"odd": NoRollback()}
        """
    )
    pytester.makefile(".toml", promotion=toml('odd = "x"'))
    result, _ = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*check kind 'odd' (hook pytest_promotion_add_kinds): ROLLBACK: expected true or false, found None"
        ]
    )


@pytest.mark.integration
def test_built_in_kinds_satisfy_the_protocol_and_load_lazily() -> None:
    code = textwrap.dedent(
        """
        import sys
        from pytest_promotion.checks import registry
        from pytest_promotion.checks.base import CheckKind
        kind = registry.get("tcp")
        assert isinstance(kind, CheckKind) and isinstance(kind.implementation, CheckKind) is False
        assert "redis" in registry.services() and "redis" in registry.placeholders()
        assert not any(m.endswith("redis_check") or m == "redis" for m in sys.modules), sorted(sys.modules)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_registry_refuses_a_built_in_name_and_common_keys() -> None:
    fresh = KindRegistry()
    fresh.add_builtins("pytest_promotion.checks", {"tcp": "tcp"}, ())
    with pytest.raises(CheckConfigError, match="the name of a built-in kind"):
        fresh.add("tcp", object())
    with pytest.raises(CheckConfigError, match="not a common check key"):
        fresh.add("timeout", object())
    remove = fresh.add("mine", object())
    assert "mine" in fresh
    remove()
    assert "mine" not in fresh


class _Typed:
    """A kind as a class: mypy accepts it where a CheckKind is expected."""

    KEYS: ClassVar[dict[str, type]] = {"typed": str}
    ROLLBACK = False
    CONCURRENT = False

    def validate(self, spec: Any, where: str) -> None:
        return None

    def prepare(self) -> None:
        return None

    def run(self, spec: Any, target: Target) -> Outcome:
        return Outcome(True, "fine")


def test_a_class_satisfies_the_protocol() -> None:
    kind: CheckKind = _Typed()
    assert isinstance(kind, CheckKind)
    assert "http" in registry and "nope" not in registry


@pytest.mark.integration
def test_a_service_kind_from_the_hook_is_an_environment_key_and_a_placeholder(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        from pytest_promotion import Outcome

        class Queue:
            KEYS = {"queue": str}
            ROLLBACK = True
            SERVICE = True

            def run(self, spec, target):
                url = target.settings["queue"]
                return Outcome(spec["queue"] == url + "/depth", f"asked {spec['queue']}")

        def pytest_promotion_add_kinds(config):
            return {"queue": Queue()}
        """
    )
    pytester.makefile(
        ".toml",
        promotion='[environments.staging]\nqueue = "amqp://mq.test"\n'
        '[[environments.staging.checks]]\nname = "q"\nqueue = "{queue}/depth"\n',
    )
    result, report = run(pytester)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert [(g["id"], g["outcome"]) for g in report["gates"]] == [("staging::q", "passed")]
