"""The one deadline thread that bounds every probe's sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from pytest_promotion.checks import deadlines


def test_callbacks_fire_at_their_deadline_in_order_and_cancel_works() -> None:
    fired: list[str] = []
    done = threading.Event()
    now = time.monotonic()

    def late() -> None:
        fired.append("late")
        done.set()

    deadlines.schedule(now + 0.2, late)
    deadlines.schedule(now + 0.05, lambda: fired.append("early"))
    token = deadlines.schedule(now + 0.1, lambda: fired.append("cancelled"))
    deadlines.cancel(token)
    assert done.wait(5)
    assert fired == ["early", "late"]
    assert time.monotonic() >= now + 0.2


def test_a_failing_callback_does_not_stop_the_other_deadlines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("bug")

    now = time.monotonic()
    deadlines.schedule(now + 0.01, broken)
    deadlines.schedule(now + 0.05, done.set)
    assert done.wait(5)
    assert "a deadline callback failed: RuntimeError('bug')" in capsys.readouterr().err


def _connected_pair() -> tuple[socket.socket, socket.socket, socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    return server, client, accepted


def test_socket_deadline_wakes_a_blocked_read() -> None:
    server, client, accepted = _connected_pair()
    try:
        with deadlines.SocketDeadline(time.monotonic() + 0.2, client.fileno()) as guard:
            assert client.recv(10) == b""  # the silent peer never sends: the shutdown ends it
        assert guard.fired
    finally:
        for s in (client, accepted, server):
            s.close()


def test_socket_deadline_left_in_time_leaves_the_connection_usable() -> None:
    server, client, accepted = _connected_pair()
    try:
        with deadlines.SocketDeadline(time.monotonic() + 0.2, client.fileno()) as guard:
            accepted.sendall(b"pong")
            assert client.recv(10) == b"pong"
        time.sleep(0.3)
        assert not guard.fired
        accepted.sendall(b"again")  # our descriptor still open, the socket not shut down
        assert client.recv(10) == b"again"
    finally:
        for s in (client, accepted, server):
            s.close()


def test_run_within_returns_raises_and_gives_up_at_the_deadline() -> None:
    now = time.monotonic()
    assert deadlines.run_within(lambda: 42, now + 5, "quick") == 42

    def broken() -> None:
        raise OSError("resolver said no")

    with pytest.raises(OSError, match=r"^resolver said no$"):
        deadlines.run_within(broken, now + 5, "broken")
    release = threading.Event()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        deadlines.run_within(lambda: release.wait(30), start + 0.2, "a lookup that hangs")
    assert time.monotonic() - start < 5  # it gave up at the deadline, not after the work
    release.set()
