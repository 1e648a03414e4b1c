"""The few commands the ``redis`` kind sends, spoken in RESP2 on one socket: every read
waits only for what is left of one deadline, and no reply is read past ``REPLY_CAP``
(an announced length is checked before anything is read). redis-py bounds neither without
reaching into its private internals."""

from __future__ import annotations

import re
import socket
import time
from typing import Any

from .base import CheckFailed

__all__ = ["REPLY_CAP", "Closed", "Exchange", "left"]

REPLY_CAP = 1 << 20  # bytes in one reply; INFO is a few KiB
_LENGTH = re.compile(rb"-?[0-9]{1,19}")


def left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the deadline passed")
    return left


class Closed(Exception):
    """The server closed the connection before a reply was complete."""


class _ServerError(Exception):
    """An error reply (``-ERR ...``)."""


class Exchange:
    """Commands and their replies (RESP2) on one socket, all before ``deadline``."""

    def __init__(self, sock: socket.socket, deadline: float, shown: str) -> None:
        self.sock, self.deadline, self.shown = sock, deadline, shown
        self.buffer = bytearray()

    def command(self, *args: str) -> Any:
        name = "CLIENT SETNAME" if args[:2] == ("CLIENT", "SETNAME") else args[0]
        encoded = [a.encode() for a in args]
        self.sock.settimeout(left(self.deadline))
        self.sock.sendall(
            b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded)
        )
        try:
            return self._reply(name)
        except _ServerError as exc:
            text = str(exc)
            code, _, rest = text.partition(" ")
            if name == "AUTH" or code in ("NOAUTH", "WRONGPASS"):
                why = rest if code.isupper() and rest else text
                raise CheckFailed(
                    f"redis {self.shown}: authentication failed ({why}); check the password"
                ) from None
            raise CheckFailed(f"redis {self.shown}: {name} failed ({text})") from None

    def _reply(self, name: str) -> str | int | None:
        line = self._line(name)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            raise _ServerError(" ".join(rest.decode("utf-8", "replace").split())[:300])
        if kind in (b":", b"$") and _LENGTH.fullmatch(rest):
            number = int(rest)
            if kind == b":":
                return number
            if number == -1:
                return None
            if number > REPLY_CAP:
                raise CheckFailed(
                    f"redis {self.shown}: the reply to {name} is over the {REPLY_CAP >> 20} MiB "
                    f"cap ({number} bytes announced)"
                )
            if number >= 0:
                while len(self.buffer) < number + 2:
                    self._fill(name)
                if self.buffer[number : number + 2] == b"\r\n":
                    data = bytes(self.buffer[:number])
                    del self.buffer[: number + 2]
                    return data.decode("utf-8", "replace")
        raise CheckFailed(
            f"redis {self.shown}: {name} answered with something that is not a Redis reply "
            f"({line[:40]!r})"
        )

    def _line(self, name: str) -> bytes:
        start = 0
        while (end := self.buffer.find(b"\r\n", start)) < 0:
            if len(self.buffer) > REPLY_CAP:
                raise CheckFailed(
                    f"redis {self.shown}: the reply to {name} is over the {REPLY_CAP >> 20} MiB "
                    "cap (no end of line)"
                )
            start = max(0, len(self.buffer) - 1)
            self._fill(name)
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _fill(self, name: str) -> None:
        self.sock.settimeout(left(self.deadline))
        data = self.sock.recv(65536)
        if not data:
            raise Closed(f"the server closed the connection before answering {name}")
        self.buffer += data
