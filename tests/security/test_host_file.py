"""The file kind on a real testinfra host (local://, and backends that cannot be reached):
a private key at 0644 fails, at 0600 passes; missing files and unreachable hosts fail with
their one-line reason, never as a pass."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

import pytest

from pytest_promotion.checks import host_file
from pytest_promotion.checks.base import CheckConfigError, Outcome, Target
from tests.support import free_port, require_binary

pytest.importorskip("testinfra", reason="pytest-testinfra is a test dependency")


def run(
    tmp_path: Path, hosts: list[str] | None = None, timeout: float = 5.0, **spec: Any
) -> Outcome:
    t = Target(
        env="prod", rootdir=tmp_path, timeout=timeout, settings={"hosts": hosts or ["local://"]}
    )
    return host_file.run(spec, t)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, readable = tmp_path / "server.key", tmp_path / "leaky.key"
    for path, mode in ((private, 0o600), (readable, 0o644)):
        path.write_text("-----BEGIN PRIVATE KEY-----\n")
        path.chmod(mode)
    return private, readable


def test_key_at_0600_passes_and_0644_fails(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, readable = keys
    me = pwd.getpwuid(os.getuid()).pw_name
    ok = run(tmp_path, file=str(private), mode="0600", owner=me, not_world_readable=True)
    assert ok.passed, ok.message
    assert ok.message == f"{private} on local://: mode 0600, owner {me}, not world-readable"
    assert (ok.measured, ok.threshold) == (
        "1 of 1 files ok",
        f"mode 0600, owner {me}, not world-readable",
    )

    out = run(tmp_path, file=[str(private), str(readable)], mode="0600", not_world_readable=True)
    assert not out.passed
    assert out.message == (
        f"local://: {readable} mode 0644, expected 0600; local://: {readable} mode 0644 is world-readable"
    )
    assert out.measured == "1 of 2 files ok"

    capped = run(tmp_path, file=str(readable), max_mode="0640")
    assert capped.message == f"local://: {readable} mode 0644, expected at most 0640"


def test_owner_and_group_by_name_or_id(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, _ = keys
    out = run(tmp_path, file=str(private), owner="nobody", group=os.getgid())
    assert not out.passed
    me = pwd.getpwuid(os.getuid()).pw_name
    assert out.message == f"local://: {private} owner {me}, expected nobody"


def test_missing_file_is_a_failure_and_exists_false_passes(tmp_path: Path) -> None:
    gone = tmp_path / "certs" / "server.key"
    out = run(tmp_path, file=str(gone), mode="0600")
    assert (out.passed, out.message) == (False, f"local://: {gone} missing")
    assert run(tmp_path, file=str(gone), exists=False).passed
    (tmp_path / "backup.sql").write_text("")
    leaked = run(tmp_path, file=str(tmp_path / "backup.sql"), exists=False)
    assert not leaked.passed
    assert leaked.message.endswith("backup.sql exists (mode 0644), expected no such file")


def test_unreachable_ssh_host_is_a_failure_even_for_exists_false(tmp_path: Path) -> None:
    require_binary("ssh")
    host = f"ssh://nobody@127.0.0.1:{free_port()}"
    out = run(tmp_path, hosts=[host], file="/app/certs/server.key", exists=False)
    assert not out.passed
    assert out.message.startswith(f"{host}: unreachable (exit 255: ")
    assert "Connection refused" in out.message


def test_bad_backend_is_a_failure(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        hosts=["kubectl://no-such-pod?namespace=nowhere&kubeconfig=/nonexistent/kc"],
        file="/etc/hostname",
        exists=True,
        timeout=20,
    )
    assert not out.passed
    assert out.message.startswith(
        "kubectl://no-such-pod?namespace=nowhere&kubeconfig=/nonexistent/kc: /etc/hostname could not be read (exit "
    )


def test_no_hosts_is_a_failure(tmp_path: Path) -> None:
    t = Target(env="prod", rootdir=tmp_path)
    out = host_file.run({"file": "/app/k", "mode": "0600"}, t)
    assert (out.passed, out.message) == (
        False,
        "no hosts to check /app/k on: set hosts in [environments.prod] or in the check",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"file": "certs/k", "mode": "0600"},
            "W: key 'file': expected an absolute path or a list of them, found 'certs/k'",
        ),
        (
            {"file": "/k", "mode": "600x"},
            "W: key 'mode': expected permission bits in octal, such as \"0600\", found '600x'",
        ),
        (
            {"file": "/k", "mode": "0600", "max_mode": "0640"},
            "W: key 'max_mode': expected either mode or max_mode, not both, found '0640'",
        ),
        (
            {"file": "/k", "exists": False, "mode": "0600"},
            "W: key 'mode': expected nothing else when exists = false, found '0600'",
        ),
        (
            {"file": "/k"},
            "W: key 'file': expected at least one of mode, max_mode, owner, group, not_world_readable, exists, found '/k'",
        ),
        (
            {"file": "/k", "mode": "0600", "hosts": ["web1"]},
            "W: key 'hosts': expected testinfra host specs such as local://, ssh://user@host, docker://name, found ['web1']",
        ),
    ],
)
def test_validate(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        host_file.validate(spec, "W")
    assert str(info.value) == message
