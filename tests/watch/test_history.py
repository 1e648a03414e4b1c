"""``promotion history`` over watches written by real ``promotion watch`` runs: one line a
watch (start, end, outcome, counts) by default, every measurement with --measurements."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.http.conftest import Servers
from tests.support import child_environ
from tests.watch.conftest import Flaky, Project
from tests.watch.test_watch import health


def lines_of(out: str, kind: str) -> list[list[str]]:
    """The table's rows of one kind, split on its column gaps."""
    rows = [line.split() for line in out.splitlines()[1:]]
    return [row for row in rows if len(row) > 3 and row[3] == kind]


@pytest.mark.integration
def test_a_watch_is_one_line_unless_measurements_are_asked_for(
    project: Project, servers: Servers
) -> None:
    good = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    bad = servers.https({"/health": Flaky(healthy=0)})
    project.config(health(good.url))
    code, _, err = project.cli("watch", "--env", "staging", "--version", "v1",
                               "--duration", "0.2s", "--interval", "0.05s")  # fmt: skip
    assert code == 0, err
    project.config(health(bad.url))
    code, _, err = project.cli("watch", "--env", "staging", "--version", "v2",
                               "--previous-version", "v1", "--duration", "1s",
                               "--interval", "0.05s")  # fmt: skip
    assert code == 1, err

    code, out, err = project.cli("history")
    assert code == 0, err
    assert lines_of(out, "measurement") == []
    first, second = lines_of(out, "watch")
    # time (UTC) is two words: date, hour
    assert first[4:6] == ["v1", "promote"]
    assert "4 measurements, 0 failed, 0 without data" in " ".join(first)
    assert second[4:6] == ["v2", "rollback"]
    assert "1 measurement, 1 failed, 0 without data" in " ".join(second)
    assert " ".join(second).count("until ") == 1
    # the watch's rollback and hold stay lines of their own
    assert [row[5] for row in lines_of(out, "rollback")] == ["not"]  # "not executed"
    assert [row[5] for row in lines_of(out, "hold")] == ["on"]

    code, out, _ = project.cli("history", "--measurements")
    assert code == 0
    assert len(lines_of(out, "measurement")) == 5
    assert len(lines_of(out, "watch")) == 4  # each watch's start and end

    code, out, _ = project.cli("history", "--json")
    kinds = [r["kind"] for r in json.loads(out)]
    assert "measurement" not in kinds and kinds.count("watch") == 4
    code, out, _ = project.cli("history", "--json", "--measurements")
    assert [r["kind"] for r in json.loads(out)].count("measurement") == 5


@pytest.mark.integration
def test_a_watch_killed_midway_shows_what_it_measured(project: Project, servers: Servers) -> None:
    good = servers.https({"/health": lambda h: h.reply(200, {"status": "ok"})})
    project.config(health(good.url))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_promotion.cli", "watch", "--env", "staging",
         "--version", "v3", "--duration", "60s", "--interval", "0.05s",
         "--rootdir", str(project.path)],
        cwd=project.path, env=child_environ(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(project.records("measurement")) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "no measurement"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no end record: as a crashed runner leaves it
        proc.wait()
    measured = len(project.records("measurement"))
    assert project.records("watch")[0].decision == "running"

    code, out, err = project.cli("history", "--env", "staging")
    assert code == 0, err
    (row,) = lines_of(out, "watch")
    assert row[4:6] == ["v3", "running"]
    assert f"no end recorded: {measured} measurements, 0 failed, 0 without data" in " ".join(row)
