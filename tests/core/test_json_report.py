"""The JSON decision file: replaced atomically, readable by the CI step that uploads it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from pytest_promotion.reporting.json_report import placeholder, write_atomic


def test_new_report_is_readable_by_others(tmp_path: Path) -> None:
    # mkstemp alone gives 0600: an artifact upload running as another user could not read it.
    report = tmp_path / "out" / "decision.json"
    report.parent.mkdir()  # never created for us: the run refuses a missing one at start
    write_atomic(report, placeholder("staging", "1.2.3"))
    assert stat.S_IMODE(report.stat().st_mode) == 0o644
    assert json.loads(report.read_text())["decision"] == "block"
    assert [p.name for p in report.parent.iterdir()] == ["decision.json"]  # no temp left


def test_replaced_report_keeps_the_mode_it_had(tmp_path: Path) -> None:
    report = tmp_path / "decision.json"
    report.write_text("{}")
    report.chmod(0o640)
    write_atomic(report, {"decision": "promote", "gates": []})
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert json.loads(report.read_text())["decision"] == "promote"


def test_only_a_regular_file_is_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        write_atomic(fifo, placeholder("staging", None))
    assert stat.S_ISFIFO(fifo.stat().st_mode)
