"""The `promotion validate` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_promotion.cli import main


def test_validate_lists_each_environments_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "promotion.toml").write_text(
        '[[checks]]\nname = "health"\nfrom = "staging"\ntcp = "127.0.0.1:1"\n'
    )
    assert main(["validate", "--rootdir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "promotion.toml: chain dev -> staging -> prod",
        "  dev: no declarative checks",
        "  staging: staging::health",
        "  prod: prod::health",
    ]


def test_validate_reports_one_line_and_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "promotion.toml").write_text("[environments.staging]\ntimeout = 'x'\n")
    assert main(["validate", "--rootdir", str(tmp_path)]) == 4
    assert capsys.readouterr().err == (
        "ERROR: promotion.toml: [environments.staging] key 'timeout': expected a number, found string 'x'\n"
    )


@pytest.mark.parametrize(
    ("setup", "args", "error"),
    [
        # a misspelt placeholder: the run would have had no rollback command at all
        (
            {"promotion.toml": '[environments.dev]\nrollback = "deploy --to {enviroment}"\n'},
            [],
            "promotion.toml: [environments.dev] key 'rollback': unknown placeholder "
            "{enviroment} (known: env, previous_version, version)",
        ),
        # nothing to validate is not "valid"
        (
            {},
            [],
            "{root}: no promotion.toml, nor [tool.promotion] in pyproject.toml: nothing to validate",
        ),
        ({}, ["--rootdir", "/nonexistent/dir"], "--rootdir /nonexistent/dir: not a directory"),
        ({}, ["--config", "missing.toml"], "--config missing.toml: file not found"),
    ],
)
def test_validate_refuses_what_a_run_could_not_use(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setup: dict[str, str],
    args: list[str],
    error: str,
) -> None:
    for name, text in setup.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    rootdir = [] if "--rootdir" in args else ["--rootdir", str(tmp_path)]
    assert main(["validate", *rootdir, *args]) == 4
    assert capsys.readouterr().err == f"ERROR: {error.replace('{root}', str(tmp_path))}\n"


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "promotion"  # beside the interpreter, as pip puts it
    assert script.is_file()
    (tmp_path / "promotion.toml").write_text(
        '[environments.prod]\nbase_url = "${NOT_SET_ANYWHERE}"\n'
    )
    proc = subprocess.run(
        [script, "validate", "--env", "production"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 4
    assert "${NOT_SET_ANYWHERE} is not set" in proc.stderr


def test_validate_names_the_values_a_rollback_template_needs_at_run_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "promotion.toml").write_text(
        "[environments.prod]\n"
        'rollback = ["helm", "rollback", "agent", "{previous_version}", "--to", "{version}"]\n'
    )
    assert main(["validate", "--rootdir", str(tmp_path), "--env", "prod"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == (
        "    rollback command needs at run time: --promotion-version or PROMOTION_VERSION "
        "(else the ledger's git describe); --promotion-previous-version or "
        "PROMOTION_PREVIOUS_VERSION (else the ledger's last-known-good version)"
    )
