"""A fleet on loopback: a few hundred listeners on 127.0.0.x, each one behaving one way
(valid, refused, hanging, slow body, wrong certificate, wrong status), served by one
asyncio loop in a thread; and a DNS server (dnslib's) that answers for the fleet's names."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from tests.http.conftest import servers  # noqa: F401 - the http kind's servers, reused
from tests.support import free_port

BEHAVIOURS = ("ok", "refused", "hang", "slow_body", "wrong_cert", "status_503")


@dataclass
class Fleet:
    """``members[behaviour]``: the ``host:port`` targets that behave that way."""

    ca_file: Path
    members: dict[str, list[str]] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None

    def targets(self, *behaviours: str) -> list[str]:
        return [t for b in behaviours for t in self.members.get(b, [])]

    def urls(self, *behaviours: str) -> list[str]:
        return [f"https://{t}" for t in self.targets(*behaviours)]


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, how: str) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        if how == "hang":
            await asyncio.sleep(3600)
        status, body = (
            (b"503 Service Unavailable", b'{"status":"down"}')
            if how == "status_503"
            else (b"200 OK", b'{"status":"ok"}')
        )
        length = b"40" if how == "slow_body" else str(len(body)).encode()
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + length + b"\r\nConnection: close\r\n\r\n" + body
        )
        await writer.drain()
        if how == "slow_body":
            for _ in range(40):
                await asyncio.sleep(0.5)
                writer.write(b" ")
                await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def _contexts(tmp: Path) -> tuple[Path, ssl.SSLContext, ssl.SSLContext]:
    ca, other = trustme.CA(), trustme.CA()
    ca_file = tmp / "fleet-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    addresses = [f"127.0.0.{i}" for i in range(1, 9)]
    good = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("fleet.test", *addresses).configure_cert(good)
    bad = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    other.issue_cert("fleet.test", *addresses).configure_cert(bad)
    return ca_file, good, bad


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """300 targets on 127.0.0.1-8: 240 valid, and 12 of each kind of broken."""
    ca_file, good, bad = _contexts(tmp_path_factory.mktemp("fleet"))
    plan = ["ok"] * 240 + [b for b in BEHAVIOURS[1:] for _ in range(12)]
    fleet = Fleet(ca_file)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    listening: list[asyncio.Server] = []

    async def start() -> None:
        for index, how in enumerate(plan):
            host = f"127.0.0.{1 + index % 8}"
            if how == "refused":
                port = free_port()
            else:
                context = bad if how == "wrong_cert" else good
                server = await asyncio.start_server(
                    lambda r, w, how=how: _answer(r, w, how), host, 0, ssl=context, backlog=64
                )
                listening.append(server)
                port = server.sockets[0].getsockname()[1]
            fleet.members.setdefault(how, []).append(f"{host}:{port}")

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    fleet.loop = loop
    yield fleet
    for server in listening:
        loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
