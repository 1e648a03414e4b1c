"""Run one command and end everything it started: the launcher of :mod:`.process`.

Started as a script (``python -I -S _reaper.py PROGRAM ARG...``), never imported with the
package. On Linux it makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``): a
process the command starts that leaves its parent, its process group or its session
(``setsid``, a double fork) is re-parented to this launcher instead of init, so it stays
in the tree below. When the command exits, or this launcher gets SIGTERM (the deadline,
Ctrl-C in the run), every process still in that tree is killed, found through ``/proc``.
The exit status is the command's (a command killed by a signal: this launcher ends by the
same signal, so the caller sees ``-signum``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
END_WITHIN = 5.0  # seconds to kill and reap the tree (a fork bomb keeps forking)
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _become_subreaper() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the process group is all that is killed
        pass


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (zombies included), from the parent pids in /proc."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rpartition(b")")[2].split()  # the name, in (), may hold anything
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _reap() -> bool:
    """Reap the children that ended; False once there is no child left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def end_all() -> None:
    """Kill every process below this one until none is left (or END_WITHIN passed).
    Re-parented orphans become our children, so "no child left" means "none left"."""
    until = time.monotonic() + END_WITHIN
    while _reap() and time.monotonic() < until:
        for pid in _descendants(os.getpid()):
            with contextlib.suppress(OSError):  # gone meanwhile
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    if os.getpgrp() == os.getpid():  # without /proc or a subreaper: at least our group
        with contextlib.suppress(OSError):  # (only when we lead it: never the caller's)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.killpg(0, signal.SIGTERM)


def _exit_like(status: int) -> None:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: end by the same one
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        os.kill(os.getpid(), signal.SIGKILL)  # a signal whose default is not to end
    os._exit(code)


def _stop(signum: int, frame: object) -> None:
    end_all()
    os.kill(os.getpid(), signal.SIGKILL)  # the caller sees -9, as for a killed group


def main(argv: list[str]) -> None:
    if not argv:
        os.write(2, b"usage: _reaper.py PROGRAM [ARG...]\n")
        os._exit(2)
    _become_subreaper()
    for signum in _SIGNALS:
        signal.signal(signum, _stop)
    pid = os.fork()
    if pid == 0:
        for signum in (*_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signum, signal.SIG_DFL)  # Python ignores SIGPIPE; the command must not
        try:
            os.execvp(argv[0], argv)  # noqa: S606 (an argv, no shell); a name: looked up on the command's PATH
        except OSError as exc:
            os.write(2, f"cannot start {argv[0]}: {exc.strerror}\n".encode())
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    end_all()
    _exit_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
