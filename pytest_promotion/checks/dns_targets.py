"""``targets_dns``: a fleet's members from DNS, with dnspython.

``"name:port"`` gives every A and AAAA record of ``name`` with that port;
``"_service._tcp.name"`` every SRV record (its target's addresses, with its port). With
``resolver = "host:port"`` the questions go to that server only; without it, A/AAAA go
through the system's resolver (``getaddrinfo``: /etc/hosts too) and SRV through the
servers in /etc/resolv.conf. The machine's resolver configuration is never changed.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from .targets import DiscoveryFailed, Member

__all__ = ["from_dns"]


def _resolver(server: str | None, deadline: float) -> Any:
    import dns.resolver

    from .tcp import split_hostport

    if server is None:
        resolver = dns.resolver.Resolver()
    else:
        host, port = split_hostport(server)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = max(deadline - time.monotonic(), 0.01)
    return resolver


def _ask(resolver: Any, name: str, rdtype: str, deadline: float) -> list[Any]:
    import dns.exception
    import dns.resolver

    resolver.lifetime = max(deadline - time.monotonic(), 0.01)
    try:
        return list(resolver.resolve(name, rdtype, search=False))
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        return []
    except dns.exception.Timeout:
        raise DiscoveryFailed(f"DNS {rdtype} {name}: no answer in time") from None
    except dns.exception.DNSException as exc:
        raise DiscoveryFailed(f"DNS {rdtype} {name}: {exc}") from None


def _addresses(resolver: Any | None, name: str, port: int, deadline: float) -> list[str]:
    if resolver is not None:
        found = [r.address for t in ("A", "AAAA") for r in _ask(resolver, name, t, deadline)]
        return [str(a) for a in found]
    from . import deadlines

    try:
        infos = deadlines.run_within(
            lambda: socket.getaddrinfo(name, port, type=socket.SOCK_STREAM), deadline, name
        )
    except TimeoutError:
        raise DiscoveryFailed(f"DNS {name}: no answer in time") from None
    except (OSError, UnicodeError) as exc:
        raise DiscoveryFailed(f"DNS {name}: {getattr(exc, 'strerror', None) or exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def from_dns(value: str, server: str | None, deadline: float) -> list[Member]:
    """The members ``value`` names (see the module's docstring)."""
    if not value.startswith("_"):
        name, _, port_text = value.rpartition(":")
        port = int(port_text)
        resolver = _resolver(server, deadline) if server else None
        addresses = _addresses(resolver, name, port, deadline)
        return [Member(_hostport(a, port), {"dns_name": name}) for a in addresses]
    resolver = _resolver(server, deadline)
    members = []
    for record in _ask(resolver, value, "SRV", deadline):
        host = str(record.target).rstrip(".")
        for address in _addresses(resolver, host, record.port, deadline):
            members.append(Member(_hostport(address, record.port), {"dns_name": host}))
    return members
