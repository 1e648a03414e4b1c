"""The one deadline thread that bounds every probe's sockets."""

from __future__ import annotations

import threading
import time

from pytest_promotion.checks import deadlines


def test_callbacks_fire_at_their_deadline_in_order_and_cancel_works() -> None:
    fired: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    deadlines.schedule(now + 0.2, lambda: (fired.append("late"), done.set()))
    deadlines.schedule(now + 0.05, lambda: fired.append("early"))
    token = deadlines.schedule(now + 0.1, lambda: fired.append("cancelled"))
    deadlines.cancel(token)
    assert done.wait(5)
    assert fired == ["early", "late"]
    assert time.monotonic() >= now + 0.2


def test_a_failing_callback_does_not_stop_the_other_deadlines(capsys) -> None:
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("bug")

    now = time.monotonic()
    deadlines.schedule(now + 0.01, broken)
    deadlines.schedule(now + 0.05, done.set)
    assert done.wait(5)
    assert "a deadline callback failed: RuntimeError('bug')" in capsys.readouterr().err
