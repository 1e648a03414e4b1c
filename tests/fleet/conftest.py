"""A fleet on loopback: a few hundred listeners on 127.0.0.x, each one behaving one way
(valid, refused, hanging, slow body, wrong certificate, wrong status), served by one
asyncio loop in a thread; and a DNS server (dnslib's) that answers for the fleet's names."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from tests.http.conftest import servers  # noqa: F401 - the http kind's servers, reused
from tests.support import free_port


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engine on uvloop's event loop, then on asyncio's."""
    from pytest_promotion.checks import fleet

    if request.param == "uvloop":
        pytest.importorskip("uvloop")  # an optional dependency (the test extra has it)
    fleet.configure(64, uvloop=request.param == "uvloop")
    yield request.param
    fleet.configure(64)


BEHAVIOURS = ("ok", "refused", "hang", "slow_body", "wrong_cert", "status_503")


@dataclass
class Fleet:
    """``members[behaviour]``: the ``host:port`` targets that behave that way."""

    ca_file: Path
    members: dict[str, list[str]] = field(default_factory=dict)

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


def _serve(tmp: Path) -> None:
    """The fleet's process: start every listener, print the members as JSON, serve until
    stdin closes (the test session ended or died)."""
    ca_file, good, bad = _contexts(tmp)
    plan = ["ok"] * 240 + [b for b in BEHAVIOURS[1:] for _ in range(12)]
    members: dict[str, list[str]] = {}
    held: list[socket.socket] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for index, how in enumerate(plan):
            host = f"127.0.0.{1 + index % 8}"
            if how == "refused":
                # Bound and never listening: connections are refused, and no other
                # listener (of this fleet or of a test running beside it) can take the
                # port, as it could once a free port was closed again.
                hold = socket.socket()
                hold.bind((host, 0))
                held.append(hold)
                port = hold.getsockname()[1]
            else:
                context = bad if how == "wrong_cert" else good
                server = await asyncio.start_server(
                    functools.partial(_answer, how=how), host, 0, ssl=context, backlog=64
                )
                port = server.sockets[0].getsockname()[1]
            members.setdefault(how, []).append(f"{host}:{port}")
        print(json.dumps({"ca_file": str(ca_file), "members": members}), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """300 targets on 127.0.0.1-8 (240 valid, 12 of each kind of broken), served by their
    own process so that its handshakes do not share the probing process's CPU."""
    tmp = tmp_path_factory.mktemp("fleet")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from tests.fleet.conftest import _serve; "
            f"_serve(Path({str(tmp)!r}))",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    assert line, "the fleet server did not start"
    data = json.loads(line)
    try:
        yield Fleet(Path(data["ca_file"]), data["members"])
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait(10)


@dataclass
class Dns:
    """A DNS server on 127.0.0.1 (UDP) answering from ``records`` (name -> [(type, value)])."""

    port: int
    records: dict[str, list[tuple[str, str]]]

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def dns_server() -> Iterator[Dns]:
    from dnslib import QTYPE, RR, SRV, A, DNSRecord  # type: ignore[import-untyped]
    from dnslib.server import BaseResolver, DNSServer  # type: ignore[import-untyped]

    records: dict[str, list[tuple[str, str]]] = {}

    class Zone(BaseResolver):  # type: ignore[misc]
        def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
            reply = request.reply()
            name = str(request.q.qname).rstrip(".")
            wanted = QTYPE[request.q.qtype]
            found = [(t, v) for t, v in records.get(name, []) if t == wanted]
            for kind, value in found:
                if kind == "A":
                    reply.add_answer(RR(name, QTYPE.A, rdata=A(value), ttl=5))
                else:
                    priority, weight, port, host = value.split()
                    rdata = SRV(int(priority), int(weight), int(port), host)
                    reply.add_answer(RR(name, QTYPE.SRV, rdata=rdata, ttl=5))
            if name not in records:
                reply.header.rcode = 3  # NXDOMAIN
            return reply

    port = free_port()
    server = DNSServer(Zone(), port=port, address="127.0.0.1")
    server.start_thread()
    try:
        yield Dns(port, records)
    finally:
        server.stop()


@pytest.fixture
def same_port_listeners() -> Iterator[tuple[int, list[socket.socket]]]:
    """One port open on 127.0.0.1 to 127.0.0.4 (what a DNS name with four addresses
    would point at)."""
    port = free_port()
    sockets = []
    for i in range(1, 5):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((f"127.0.0.{i}", port))
        sock.listen(16)
        sockets.append(sock)
    yield port, sockets
    for sock in sockets:
        sock.close()
