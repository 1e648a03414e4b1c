"""Roles registered only where they have work to do (issue 17: every hook implementation
costs each gate): what they do still happens wherever it is configured."""

from __future__ import annotations

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
