"""Declarative checks start together on a bounded pool; answers are the same as sequential."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from pytest_promotion.checks.pool import ProbePool
from tests.reports import REPORT_NAME, REPORT_OPTION, Report, RunAndParse, read
from tests.support import free_port


class HangingServer:
    """Accepts connections and never answers; records when each connection arrived.

    ``burst()`` is the largest number of connections that arrived within half a probe
    timeout of each other: probes started together arrive together, probes that waited
    for a free slot arrive a whole timeout later. (Counting open sockets instead races
    with the server noticing a client's close.)"""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.accepts: list[float] = []
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.stopped = False
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
                self.accepts.append(time.monotonic())
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass

    def burst(self, window: float = 0.5) -> int:
        times = sorted(self.accepts)
        return max((sum(1 for t in times if a <= t < a + window) for a in times), default=0)

    def wait_for(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepts) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    def reset(self) -> None:
        self.accepts.clear()

    def close(self) -> None:
        # Wake the blocked accept() before closing: a thread still blocked on a closed fd
        # would accept the connections of the next server that reuses the fd number.
        self.stopped = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.acceptor.join(timeout=5)
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


def config(port: int, n: int, concurrency: int, timeout: float = 1.0) -> str:
    checks = "".join(
        f'[[environments.staging.checks]]\nname = "c{i}"\nhttp = "http://127.0.0.1:{port}/health"\n'
        for i in range(n)
    )
    return f"[promotion]\nconcurrency = {concurrency}\n[environments.staging]\ntimeout = {timeout}\n{checks}"


def strip(report: Report) -> list[tuple[str, str, str]]:
    return [(g["id"], g["outcome"], g["message"]) for g in report["gates"]]


def test_checks_run_concurrently_and_answer_like_sequential(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hanging: HangingServer
) -> None:
    pytester.makefile(".toml", promotion=config(hanging.port, 6, concurrency=64))
    result, report = run_and_parse("--env=staging")
    assert result.ret == 1
    concurrent = report
    assert hanging.burst() == 6  # all six arrived together: they were started together

    hanging.reset()
    pytester.makefile(".toml", promotion=config(hanging.port, 6, concurrency=1))
    _, report = run_and_parse("--env=staging")
    sequential = report
    assert hanging.burst() == 1

    assert strip(concurrent) == strip(sequential)
    assert concurrent["decision"] == sequential["decision"] == "rollback"
    assert concurrent["reasons"] == sequential["reasons"]
    assert "no response within 1 s" in concurrent["gates"][0]["message"]


def test_pool_bound_is_respected(pytester: pytest.Pytester, hanging: HangingServer) -> None:
    pytester.makefile(".toml", promotion=config(hanging.port, 6, concurrency=3, timeout=1.0))
    pytester.runpytest("--env=staging")
    hanging.wait_for(6)
    assert len(hanging.accepts) == 6
    assert hanging.burst() == 3


def test_collect_only_probes_nothing(pytester: pytest.Pytester, hanging: HangingServer) -> None:
    pytester.makefile(".toml", promotion=config(hanging.port, 4, concurrency=64))
    pytester.runpytest("--env=staging", "--collect-only")
    time.sleep(0.2)  # give a wrongly started probe the time to connect
    assert hanging.accepts == []


def test_marked_python_gate_probes_start_early(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hanging: HangingServer
) -> None:
    pytester.makefile(".toml", promotion=config(hanging.port, 1, concurrency=64))
    pytester.makepyfile(
        f"""
        import pytest
        @pytest.mark.staging
        @pytest.mark.probe("http", "http://127.0.0.1:{hanging.port}/x", name="early")
        def test_early(probe):
            probe.result("early")
        """
    )
    _, report = run_and_parse("--env=staging")
    assert hanging.burst() == 2  # the declarative check and the marked probe started together
    gates = {g["id"].split("::")[-1]: g for g in report["gates"]}
    assert "no response within 1 s" in gates["test_early"]["message"]


def test_marked_probes_start_together_without_declarative_checks(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hanging: HangingServer
) -> None:
    # The probe start looks only at the gates the selection gave a probe marker's
    # Prefetch: an environment with no [[checks]] still starts them together.
    pytester.makefile(".toml", promotion="[environments.staging]\ntimeout = 1\n")
    pytester.makepyfile(
        f"""
        import pytest
        pytestmark = pytest.mark.staging
        @pytest.mark.probe("http", "http://127.0.0.1:{hanging.port}/a", name="a")
        def test_a(probe):
            probe.result("a")
        @pytest.mark.probe("http", "http://127.0.0.1:{hanging.port}/b", name="b")
        def test_b(probe):
            probe.result("b")
        """
    )
    _, report = run_and_parse("--env=staging")
    assert hanging.burst() == 2
    assert report["decision"] == "rollback"  # a probe that timed out: a health failure


def test_a_marked_gate_a_conftest_deselects_starts_no_probe(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hanging: HangingServer
) -> None:
    pytester.makefile(".toml", promotion="[environments.staging]\ntimeout = 1\n")
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(config, items):
            dropped = [i for i in items if i.name == "test_dropped"]
            items[:] = [i for i in items if i.name != "test_dropped"]
            config.hook.pytest_deselected(items=dropped)
        """
    )
    pytester.makepyfile(
        f"""
        import pytest
        pytestmark = pytest.mark.staging
        @pytest.mark.probe("http", "http://127.0.0.1:{hanging.port}/a", name="a")
        def test_kept(probe):
            probe.result("a")
        @pytest.mark.probe("http", "http://127.0.0.1:{hanging.port}/b", name="b")
        def test_dropped(probe):
            probe.result("b")
        @pytest.mark.probe("http", "http://127.0.0.1:{hanging.port}/c", name="c")
        def test_kept_too(probe):
            probe.result("c")
        """
    )
    _, report = run_and_parse("--env=staging")
    time.sleep(0.2)  # give a wrongly started probe the time to connect
    assert len(hanging.accepts) == 2  # test_kept and test_kept_too, together
    assert hanging.burst() == 2
    assert [g["id"].split("::")[-1] for g in report["gates"]] == ["test_kept", "test_kept_too"]
    assert report["decision"] == "rollback"  # the probes timed out


def test_a_tests_own_probe_wins_over_its_modules_of_the_same_name(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hanging: HangingServer
) -> None:
    # Marks come closest first; the module's probe used to overwrite the test's own.
    refused = free_port()
    pytester.makefile(".toml", promotion="[environments.staging]\ntimeout = 1\n")
    pytester.makepyfile(
        f"""
        import pytest
        pytestmark = [pytest.mark.staging, pytest.mark.probe("tcp", "127.0.0.1:{hanging.port}")]
        @pytest.mark.probe("tcp", "127.0.0.1:{refused}")
        def test_own(probe):
            probe.result("tcp")
        @pytest.mark.probe("tcp", "127.0.0.1:{hanging.port}", no_such_key=1, name="bad")
        def test_bad_key(probe):
            probe.result("bad")
        """
    )
    result, report = run_and_parse("--env=staging")
    gates = {g["id"].split("::")[-1]: g for g in report["gates"]}
    assert gates["test_own"]["outcome"] == "failed"
    assert f"connection refused by 127.0.0.1:{refused}" in gates["test_own"]["message"]
    assert gates["test_bad_key"]["message"].startswith(
        "AssertionError: @pytest.mark.probe 'bad': probe tcp: unknown key 'no_such_key'"
    )
    assert "CheckConfigError" not in result.stdout.str()


@pytest.mark.integration
def test_ctrl_c_cancels_pending_probes_and_blocks(
    pytester: pytest.Pytester, hanging: HangingServer
) -> None:
    (pytester.path / "promotion.toml").write_text(
        config(hanging.port, 20, concurrency=2, timeout=30)
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--env=staging",
            REPORT_OPTION,
            "-p",
            "no:cacheprovider",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while len(hanging.accepts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(hanging.accepts) == 2
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)  # not 10 x 30 s: pending probes were cancelled
    assert proc.returncode == 2, out.decode()
    report = read(pytester.path / REPORT_NAME)
    assert report["decision"] == "block"
    assert len(hanging.accepts) == 2  # the 18 pending probes never started


def test_pool_crash_fails_only_its_own_future() -> None:
    pool = ProbePool(4)

    def boom() -> int:
        raise RuntimeError("probe crashed")

    futures = [pool.submit(lambda: 1), pool.submit(boom), pool.submit(lambda: 3)]
    assert futures[0].result(timeout=5) == 1
    assert futures[2].result(timeout=5) == 3
    with pytest.raises(RuntimeError, match="probe crashed"):
        futures[1].result(timeout=5)
    pool.close()


def test_quality_checks_keep_their_order_while_probes_start_early(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hanging: HangingServer
) -> None:
    write = "import pathlib, time; time.sleep(0.3); pathlib.Path('artifact').write_text('1')"
    read = "import pathlib, sys; sys.exit(0 if pathlib.Path('artifact').exists() else 3)"
    pytester.makefile(
        ".toml",
        promotion=f"""
[environments.dev]
timeout = 1
[[environments.dev.checks]]
name = "produce"
command = ["{{python}}", "-c", "{write}"]
[[environments.dev.checks]]
name = "consume"
command = ["{{python}}", "-c", "{read}"]
[[environments.dev.checks]]
name = "probe-a"
http = "http://127.0.0.1:{hanging.port}/a"
[[environments.dev.checks]]
name = "probe-b"
http = "http://127.0.0.1:{hanging.port}/b"
""",
    )
    _, report = run_and_parse("--env=dev")
    gates = {g["id"]: g["outcome"] for g in report["gates"]}
    assert gates == {
        "dev::produce": "passed",
        "dev::consume": "passed",
        "dev::probe-a": "failed",
        "dev::probe-b": "failed",
    }
    assert hanging.burst() == 2  # the two probes started together, before the commands ran


def test_checks_start_when_the_session_starts_not_after_collection(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hanging: HangingServer
) -> None:
    # A slow collection (a test module sleeping at import) must not delay the probes: their
    # timeout runs while pytest collects.
    pytester.makefile(".toml", promotion=config(hanging.port, 4, concurrency=64))
    pytester.makeconftest(
        """
        import pathlib, time
        def pytest_collection_finish(session):
            pathlib.Path("collected").write_text(repr(time.monotonic()))
        """
    )
    pytester.makepyfile(
        """
        import time
        import pytest
        time.sleep(0.8)
        @pytest.mark.staging
        def test_gate():
            pass
        """
    )
    result, report = run_and_parse("--env=staging")
    assert result.ret == 1
    collected = float((pytester.path / "collected").read_text())
    assert len(hanging.accepts) == 4
    assert max(hanging.accepts) < collected - 0.5  # all four were waiting during collection
    assert [g["outcome"] for g in report["gates"]].count("failed") == 4


@pytest.mark.parametrize("narrowing", [["-k", "c1"], ["--deselect", "staging::c0"]])
def test_a_narrowed_selection_probes_only_what_it_selected(
    pytester: pytest.Pytester,
    run_and_parse: RunAndParse,
    hanging: HangingServer,
    narrowing: list[str],
) -> None:
    pytester.makefile(".toml", promotion=config(hanging.port, 3, concurrency=64, timeout=0.5))
    _, report = run_and_parse("--env=staging", *narrowing)
    time.sleep(0.2)  # give a wrongly started probe the time to connect
    selected = [g["id"] for g in report["gates"]]
    assert len(hanging.accepts) == len(selected) < 3


def test_a_check_a_conftest_deselects_after_the_early_start_is_not_reported(
    pytester: pytest.Pytester, run_and_parse: RunAndParse, hanging: HangingServer
) -> None:
    pytester.makefile(".toml", promotion=config(hanging.port, 3, concurrency=64, timeout=0.5))
    pytester.makeconftest(
        """
        import pytest
        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(config, items):
            dropped = [i for i in items if i.nodeid == "staging::c0"]
            items[:] = [i for i in items if i not in dropped]
            config.hook.pytest_deselected(items=dropped)
        """
    )
    result, report = run_and_parse("--env=staging")
    result.stdout.fnmatch_lines(["*2 failed, 1 deselected*"])
    assert [g["id"] for g in report["gates"]] == ["staging::c1", "staging::c2"]


def test_pool_reports_when_every_probe_is_dispatched() -> None:
    pool = ProbePool(1)
    release = threading.Event()
    futures = [pool.submit(release.wait) for _ in range(3)]
    assert pool.wait_dispatched(timeout=0.2) is False  # one thread, busy with the first
    release.set()
    assert pool.wait_dispatched(timeout=5) is True
    assert all(f.result(timeout=5) for f in futures)
    pool.close()


def test_a_target_a_conftest_starts_in_sessionstart_is_up_before_the_probes(
    pytester: pytest.Pytester, run_and_parse: RunAndParse
) -> None:
    port = free_port()
    checks = "".join(
        f'[[environments.staging.checks]]\nname = "c{i}"\nhttp = "http://127.0.0.1:{port}/"\n'
        for i in range(3)
    )
    pytester.makefile(".toml", promotion=f"[environments.staging]\ntimeout = 2\n{checks}")
    pytester.makeconftest(
        f"""
        import http.server, threading

        class Ok(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
            def log_message(self, *args):
                pass

        def pytest_sessionstart(session):
            server = http.server.ThreadingHTTPServer(("127.0.0.1", {port}), Ok)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            session.config.add_cleanup(server.server_close)
            session.config.add_cleanup(server.shutdown)
        """
    )
    result, report = run_and_parse("--env=staging")
    assert result.ret == 0, result.stdout.str()
    assert report["decision"] == "promote"
