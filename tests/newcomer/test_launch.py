"""`launch` / `ready` / `teardown`: an environment that starts its own target."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

LAUNCH_DEMO = """
[environments.dev]
launch = ["{python}", "-m", "pytest_promotion.demo", "serve", "--env-file", "demo.env"]
ready = ["{python}", "-m", "pytest_promotion.demo", "ready", "demo.env"]
ready_timeout = 30
teardown = ["{python}", "-c", "open('torn-down', 'w').write('{env}')"]
dotenv = "demo.env"
base_url = "${PROMOTION_DEMO_URL}"
ca_bundle = "${PROMOTION_DEMO_CA}"

[[checks]]
name = "health"
from = "dev"
http = "/health"
expect_json = { status = "ok" }
trigger = "rollback"
"""

# real servers, subprocess pytest runs, external checkers: the integration tier
pytestmark = pytest.mark.integration


def test_launched_target_is_checked_then_stopped_and_torn_down(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMOTION_DEMO_FAULT", raising=False)
    pytester.makefile(".toml", promotion=LAUNCH_DEMO)
    result = pytester.runpytest_subprocess("--env=dev", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["promotion: dev's target is ready*", "decision: PROMOTE*"])
    assert not (pytester.path / "demo.env").exists()  # the demo stopped: it removes it
    assert (pytester.path / "torn-down").read_text() == "dev"


def test_launched_faulty_target_ends_in_rollback(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMOTION_DEMO_FAULT", "500")
    pytester.makefile(".toml", promotion=LAUNCH_DEMO)
    result = pytester.runpytest_subprocess("--env=dev", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["decision: ROLLBACK*", "  reason: gate dev::health failed*"])


def test_target_never_ready_blocks_with_its_last_log_lines(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion="""
[environments.dev]
launch = ["{python}", "-c", "import time; print('binding 0.0.0.0:8443: address in use', flush=True); time.sleep(60)"]
ready = ["{python}", "-c", "raise SystemExit(1)"]
ready_timeout = 1
base_url = "https://127.0.0.1:9"
""",
    )
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_x() -> None:\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--env=dev", "-p", "no:cacheprovider", "--promotion-report=decision.json"
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "ERROR: promotion.toml: ?environments.dev? launch: not ready within 1 s: "
            "readiness check never succeeded (block: no gate ran); last lines of *launch-dev.log:",
            "  | binding 0.0.0.0:8443: address in use",
        ]
    )
    assert '"decision": "block"' in (pytester.path / "decision.json").read_text()


def test_launch_that_exits_non_zero_blocks(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion="""
[environments.dev]
launch = ["{python}", "-c", "import sys; print('no such compose file'); sys.exit(14)"]
""",
    )
    result = pytester.runpytest_subprocess("--env=dev", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            f"*launch: {sys.executable} exited with 14 before it was ready*",
            "  | no such compose file",
        ]
    )


def test_launch_keys_are_validated(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", promotion='[environments.dev]\nready_timeout = "soon"\n')
    result = pytester.runpytest_subprocess("--env=dev", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*key 'ready_timeout': expected a number, found string 'soon'"])


def test_without_launch_nothing_starts(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makefile(".toml", promotion="[environments.dev]\n")
    pytester.makepyfile("import pytest\n@pytest.mark.dev\ndef test_x() -> None:\n    pass\n")
    result = pytester.runpytest_subprocess("--env=dev", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert "launching" not in result.stdout.str()
