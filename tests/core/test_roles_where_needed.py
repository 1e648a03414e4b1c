"""Roles registered only where they have work to do (issue 17: every hook implementation
costs each gate): what they do still happens wherever it is configured."""

from __future__ import annotations

import json
import subprocess

import pytest

from pytest_promotion import progress
from pytest_promotion.ledger import Record, open_store
from tests.support import require_binary

SLOW_CHECK = """
[[environments.dev.checks]]
name = "slow"
command = ["{python}", "-c", "import time; time.sleep(1)"]
"""


def test_a_long_declarative_check_still_shows_its_heartbeat(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "EVERY", 0.1)
    pytester.makefile(".toml", promotion=SLOW_CHECK)
    result = pytester.runpytest("-p", "no:cacheprovider", "--env=dev")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["  dev::slow (command): running for * s"])


def test_a_hold_blocks_a_promote_in_a_run_that_does_not_watch(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watch plugin is registered only when the run watches; the ledger enforces a
    # hold that an earlier run's watch left on the environment.
    monkeypatch.delenv("PROMOTION_LEDGER")
    pytester.makefile(".toml", promotion="[environments.staging]\n")
    pytester.makepyfile("import pytest\n\n@pytest.mark.staging\ndef test_ok():\n    pass\n")
    store = open_store("sqlite:///.promotion/ledger.sqlite3", pytester.path)
    try:
        hold = Record(kind="hold", environment="staging", version="v1", decision="on",
                      actor="watch", body={"reason": "3 failed measurements"})  # fmt: skip
        store.append([hold])
    finally:
        store.close()
    result = pytester.runpytest("-p", "no:cacheprovider", "--env=staging",
                                "--promotion-version=v2")  # fmt: skip
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "decision: BLOCK*",
        f"*staging is on hold since * (record {hold.id[:12]}: 3 failed measurements): release "
        "it with `promotion release-hold --env staging --reason ...`*",
    ])  # fmt: skip


def test_a_version_template_starts_with_the_version_git_describes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a ledger the version comes from git describe when none is given: the rollback
    # template's check at start sees it (it asked for --promotion-version before).
    git = require_binary("git")
    monkeypatch.delenv("PROMOTION_LEDGER")
    pytester.makefile(
        ".toml",
        promotion='[environments.staging]\nrollback = ["deploy", "--undo", "{version}"]\n',
    )
    pytester.makepyfile("import pytest\n\n@pytest.mark.staging\ndef test_down():\n    assert 0\n")
    for argv in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                 ["tag", "v2.0.0"]):  # fmt: skip
        subprocess.run([git, *argv], cwd=pytester.path, check=True)
    result = pytester.runpytest("-p", "no:cacheprovider", "--env=staging")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["decision: BLOCK v2.0.0*", "*deploy --undo v2.0.0*"])


def test_an_executed_rollback_without_a_ledger_spools_no_record(
    pytester: pytest.Pytester,
) -> None:
    # `ledger = false` (tests/conftest.py): there is no ledger to sync a record to later.
    pytester.makefile(".toml", promotion='[environments.staging]\nrollback = ["true"]\n')
    pytester.makepyfile("import pytest\n\n@pytest.mark.staging\ndef test_down():\n    assert 0\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--env=staging",
                                "--promotion-rollback=execute")  # fmt: skip
    assert result.ret == 1
    result.stdout.fnmatch_lines(["decision: BLOCK*", "rollback executed: exit 0"])
    assert "ledger record was not written" not in result.stdout.str()
    assert not (pytester.path / ".promotion").exists()


SAY_ROLES = """
import pytest

ROLES = ("promotion-selector", "promotion-collector", "promotion-relay", "promotion-probes",
         "promotion-ledger")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    manager = session.config.pluginmanager
    writer = manager.get_plugin("terminalreporter")
    for name in ROLES:
        role = manager.get_plugin(name)
        listed = "none" if role is None else ",".join(
            n for n in dir(role) if not n.startswith("pytest_")) or "hooks only"
        writer.write_line(f"role {name}: {listed}")
"""


@pytest.mark.parametrize(
    "ledger, version, shown",
    [
        ("false", ["--promotion-version=v1"], "--promotion-version"),
        ("false", [], None),
        ("sqlite:///l.sqlite3", ["--promotion-version=v1"], "--promotion-version"),
    ],
)
def test_the_ledgers_plugin_only_where_the_ledger_is_on(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ledger: str,
    version: list[str],
    shown: str | None,
) -> None:
    # `ledger = false` and nothing that reads it (no policy gate, no watch): the ledger
    # package is not even imported; the JSON report says what the plugin would have said.
    monkeypatch.setenv("PROMOTION_LEDGER", ledger)
    pytester.makeconftest(SAY_ROLES)
    pytester.makefile(".toml", promotion="[environments.staging]\n")
    pytester.makepyfile("import pytest\n\n@pytest.mark.staging\ndef test_ok(gate):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--env=staging",
                                "--promotion-report=d.json", *version)  # fmt: skip
    assert result.ret == 0
    on = ledger != "false"
    ledger_role = [
        line for line in result.stdout.lines if line.startswith("role promotion-ledger:")
    ]
    assert (ledger_role == ["role promotion-ledger: none"]) is not on
    report = json.loads((pytester.path / "d.json").read_text())
    assert report["ledger"]["version_source"] == shown
    assert (report["ledger"]["url"] == "(off)") is not on
    if not on:
        assert report["ledger"] == {"url": "(off)", "record": None, "spooled": None,
                                    "version_source": shown, "evidence": {}}  # fmt: skip


def test_roles_list_only_their_hooks_and_fixtures_still_resolve(
    pytester: pytest.Pytester,
) -> None:
    # pytest probes every name dir() lists of every plugin for a fixture: a role lists
    # its hooks only (role.py); the plugin module lists its hooks and its fixtures.
    pytester.makeconftest(SAY_ROLES)
    pytester.makefile(".toml", promotion="[environments.staging]\n")
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.staging\n"
        "def test_ok(gate, probe, promotion_env):\n    gate.measure(1, min=0)\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--env=staging")
    assert result.ret == 0
    for role in ("selector", "collector", "relay", "probes"):
        result.stdout.fnmatch_lines([f"role promotion-{role}: hooks only"])
    import pytest_promotion.plugin as plugin_module

    assert {"gate", "http", "probe", "promotion_env"} <= set(dir(plugin_module))
    assert all(
        n.startswith("pytest_") for n in set(dir(plugin_module)) - set(plugin_module._FIXTURES)
    )
