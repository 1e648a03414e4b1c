"""The security posture through promotion.toml: a posture failure blocks (it is not an
outage), ``trigger = "rollback"`` says otherwise, every failure names what it found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Servers

pytest.importorskip("testinfra", reason="pytest-testinfra is a test dependency")


def config(servers: Servers, key: Path, trigger: str = "") -> str:
    server = servers.https()
    return f"""
[environments.dev]
base_url = "{server.url}"
ca_bundle = "{servers.ca_file}"
hosts = ["local://"]
rollback = "undo {{env}}"

[[environments.dev.checks]]
name = "tls-posture"
tls = "localhost:{server.port}"
refuse_below = "1.2"
forbid_ciphers = ["RC4", "3DES", "NULL", "EXPORT"]
require_forward_secrecy = true

[[environments.dev.checks]]
name = "headers"
http = "/health"
forbid_paths = ["/.env", "/.git/config", "/debug/pprof/"]

[[environments.dev.checks]]
name = "key-private"
file = "{key}"
mode = "0600"
{trigger}
"""


def test_posture_failure_blocks_and_trigger_rollback_rolls_back(
    pytester: pytest.Pytester, servers: Servers, read_report: Any
) -> None:
    key = pytester.path / "server.key"
    key.write_text("secret\n")
    key.chmod(0o644)
    pytester.makefile(".toml", promotion=config(servers, key))
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    assert result.ret != 0
    report = read_report()
    gates = {g["id"]: g for g in report["gates"]}
    assert gates["dev::tls-posture"]["outcome"] == "passed", gates["dev::tls-posture"]["message"]
    assert gates["dev::tls-posture"]["measured"].startswith("TLSv1.3 TLS_")
    assert gates["dev::headers"]["outcome"] == "passed"
    assert gates["dev::headers"]["measured"] == "3 of 3 paths hidden"
    assert gates["dev::key-private"]["message"] == f"local://: {key} mode 0644, expected 0600"
    assert report["decision"] == "block"

    pytester.makefile(".toml", promotion=config(servers, key, 'trigger = "rollback"'))
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    assert result.ret != 0
    report = read_report()
    assert (report["decision"], report["rollback_command"]) == ("rollback", "undo dev")

    key.chmod(0o600)
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    assert read_report()["decision"] == "promote", result.stdout.str()
    assert result.ret == 0


def test_unknown_posture_key_names_the_check(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        promotion='[[environments.dev.checks]]\nname = "k"\nfile = "/k"\nmodes = "0600"\n',
    )
    result = pytester.runpytest("--env=dev")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*unknown key 'modes' for a file check*"])
