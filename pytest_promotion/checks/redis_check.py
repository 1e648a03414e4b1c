"""The ``redis`` check kind: PING must answer PONG, and optionally role and memory.

Keys:

- ``redis``: ``redis://[user:password@]host:port/db`` or ``rediss://...`` (TLS, verified
  against the environment's ``ca_bundle``, or the system store without one). The only URL
  options accepted are ``db`` and ``client_name``: TLS verification and timeouts are the
  check's own (``ca_bundle``, ``insecure``, ``timeout``), never a URL's;
- ``expect_role``: ``"master"``, or ``"replica"`` / ``"slave"`` (the same thing), as
  ``INFO replication`` reports it;
- ``max_memory_used_ratio``: the highest acceptable ``used_memory / maxmemory`` (0 < r <= 1).
  A server with ``maxmemory 0`` has no limit, so the ratio does not exist: the check
  fails closed and says so, because "no data" is never a pass (a block, not a rollback
  trigger). Drop the key for such a server, or give it a ``maxmemory``.

Measured: the ratio when ``max_memory_used_ratio`` is set, else the PING round trip in ms.

The check speaks the Redis protocol (RESP2) itself for the few commands it sends (AUTH,
SELECT, CLIENT SETNAME, PING, INFO) over one socket, so that everything is bounded: the
whole exchange, connect to last reply, by the check's timeout (a server that trickles its
answer a byte at a time fails at the deadline), and every reply by ``REPLY_CAP``
(announced lengths are checked before anything is read). PONG is checked literally.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..redact import redact, redact_url
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .deadlines import SocketDeadline
from .resp import Closed, Exchange
from .tcp import connect

__all__ = ["KEYS", "ROLLBACK", "run", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "redis": str,
    "expect_role": str,
    "max_memory_used_ratio": float,
}
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True

URL_OPTIONS = ("db", "client_name")
INSECURE = "TLS verification disabled (insecure = true)"
_ROLES = {"master": "master", "slave": "slave", "replica": "slave"}


class _Refused(ValueError):
    """A URL the check does not accept: the one-line reason, after ``key 'redis': ``."""


@dataclass(frozen=True)
class _Server:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    db: int
    client_name: str

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def validate(spec: Mapping[str, Any], where: str) -> None:
    url = spec.get("redis")
    # validated before ${VAR} and {placeholder} substitution: a template is checked at run
    if not isinstance(url, str) or not (url.startswith(("redis://", "rediss://")) or "{" in url):
        raise CheckConfigError(
            f"{where}: key 'redis': expected a redis:// or rediss:// URL, "
            f"found {redact_url(str(url))!r}"
        )
    try:
        if "{" in url:
            _options(url)  # what is literally there already (a URL option after a ${VAR})
        else:
            _parse(url)
    except _Refused as exc:
        raise CheckConfigError(f"{where}: key 'redis': {exc}") from None
    role = spec.get("expect_role")
    if role is not None and role not in _ROLES:
        raise CheckConfigError(
            f'{where}: key \'expect_role\': expected "master", "replica" or "slave", found {role!r}'
        )
    ratio = spec.get("max_memory_used_ratio")
    if ratio is not None and not 0 < ratio <= 1:
        raise CheckConfigError(
            f"{where}: key 'max_memory_used_ratio': expected a number in (0, 1], found {ratio!r}"
        )


def _options(url: str) -> dict[str, str]:
    """The URL's options; any but ``URL_OPTIONS`` is refused (``ssl_cert_reqs=none`` would
    turn verification off, ``socket_timeout`` unbound the check)."""
    try:
        found = parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise _Refused(f"the URL cannot be read ({exc})") from None
    for name in found:
        if name not in URL_OPTIONS:
            raise _Refused(
                f"expected no URL option but {' or '.join(URL_OPTIONS)}, found {name[:40]!r} "
                "(TLS verification and timeouts come from ca_bundle, insecure and timeout)"
            )
    return {name: values[-1] for name, values in found.items()}


def _parse(url: str) -> _Server:
    options = _options(url)
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise _Refused(f"expected a redis:// or rediss:// URL, found {redact_url(url)!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise _Refused(f"expected a port number in the URL, found {redact_url(url)!r}") from None
    if not parts.hostname:
        raise _Refused(f"expected a host in the URL, found {redact_url(url)!r}")
    db = options.get("db", unquote(parts.path).strip("/") or "0")
    if not db.isdigit() or len(db) > 5:
        raise _Refused(f"expected a database number (/0, /1, ...), found {db[:40]!r}")
    return _Server(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "rediss",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        db=int(db),
        client_name=options.get("client_name") or "pytest-promotion",
    )


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    timeout = float(spec.get("timeout", target.timeout))
    deadline = time.monotonic() + timeout
    url = str(spec["redis"])
    secrets = target.secrets
    shown = redact(redact_url(url), secrets)
    try:
        server = _parse(url)
    except _Refused as exc:
        return Outcome(False, redact(f"redis {shown}: key 'redis': {exc}", secrets))
    if server.password:
        secrets = (*secrets, server.password)
    late = f"redis {shown}: no complete answer from {server.address} within {timeout:g} s"
    try:
        outcome = _connect_and_probe(spec, target, server, deadline, timeout, shown, late)
    except CheckFailed as failed:
        outcome = failed.outcome()
    if server.tls and target.insecure:
        outcome.message += f"; {INSECURE}"
    outcome.message = redact(outcome.message, secrets)
    return outcome


def _connect_and_probe(
    spec: Mapping[str, Any],
    target: Target,
    server: _Server,
    deadline: float,
    budget: float,
    shown: str,
    late: str,
) -> Outcome:
    context = None
    if server.tls:
        from .tls import client_context  # one shared context per trust setting

        try:
            context = client_context(target, verify=not target.insecure)
        except OSError as exc:  # ssl.SSLError too
            where = (
                f"ca_bundle {target.path(target.ca_bundle)}"
                if target.ca_bundle
                else "the trust store"
            )
            raise CheckFailed(f"redis {shown}: {where} cannot be read ({_one_line(exc)})") from None
    try:  # the host name's lookup too is bounded by the deadline
        sock = connect(server.host, server.port, deadline, budget=budget)
    except CheckFailed as failed:
        raise CheckFailed(f"redis {shown}: {failed.message}") from None
    conn: socket.socket = sock
    try:
        with SocketDeadline(deadline, sock.fileno()) as guard:
            try:
                if context is not None:
                    conn = context.wrap_socket(sock, server_hostname=server.host)
                return _login_and_probe(Exchange(conn, deadline, shown), spec, server)
            except (OSError, Closed) as exc:
                if guard.fired or isinstance(exc, TimeoutError):
                    raise CheckFailed(late) from None
                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise CheckFailed(
                        f"redis {shown}: TLS verification failed ({_one_line(exc)}); is the "
                        "environment's ca_bundle the CA that signed the server's certificate?"
                    ) from None
                if isinstance(exc, ssl.SSLError):
                    raise CheckFailed(
                        f"redis {shown}: TLS handshake failed ({_one_line(exc)})"
                    ) from None
                if isinstance(exc, Closed):
                    raise CheckFailed(f"redis {shown}: {exc}") from None
                raise CheckFailed(f"redis {shown}: connection lost ({_one_line(exc)})") from None
    finally:
        conn.close()
        sock.close()


def _login_and_probe(exchange: Exchange, spec: Mapping[str, Any], server: _Server) -> Outcome:
    if server.password:
        user = (server.username,) if server.username else ()
        exchange.command("AUTH", *user, server.password)
    if server.db:
        exchange.command("SELECT", str(server.db))
    exchange.command("CLIENT", "SETNAME", server.client_name)
    return _probe(spec, exchange.command, exchange.shown)


def _probe(spec: Mapping[str, Any], command: Callable[..., Any], shown: str) -> Outcome:
    start = time.monotonic()
    reply = command("PING")
    latency_ms = round((time.monotonic() - start) * 1000, 2)
    if reply != "PONG":
        raise CheckFailed(f"redis {shown}: PING answered {str(reply)[:80]!r}, expected PONG")
    facts = [f"PONG in {latency_ms:g} ms"]
    role = spec.get("expect_role")
    ratio_max = spec.get("max_memory_used_ratio")
    info: dict[str, str] = {}
    if role is not None or ratio_max is not None:
        section = "default"
        if ratio_max is None or role is None:
            section = "replication" if ratio_max is None else "memory"
        info = _parse_info(str(command("INFO", section)))
    if role is not None:
        found = info.get("role")
        if found is None:
            raise CheckFailed(f"redis {shown}: INFO replication has no role field")
        if found != _ROLES[role]:
            raise CheckFailed(
                f"redis {shown}: role is {found}, expected {role}",
                measured=found,
                threshold=f"role == {role}",
            )
        facts.append(f"role {found}")
    if ratio_max is not None:
        return _memory(info, float(ratio_max), shown, facts)
    return Outcome(
        True,
        f"redis {shown}: " + ", ".join(facts),
        measured=latency_ms,
        threshold="PONG",
        unit="ms",
        details={"role": info.get("role")} if role is not None else {},
    )


def _memory(info: dict[str, str], ratio_max: float, shown: str, facts: list[str]) -> Outcome:
    threshold = f"<= {ratio_max:g}"
    try:
        used = int(info["used_memory"])
        limit = int(info["maxmemory"])
    except (KeyError, ValueError):
        raise CheckFailed(
            f"redis {shown}: INFO memory has no used_memory/maxmemory; cannot measure the ratio",
            threshold=threshold,
        ) from None
    if used < 0 or limit < 0:  # not a Redis server's numbers: no data, never a pass
        raise CheckFailed(
            f"redis {shown}: INFO memory says used_memory={used}, maxmemory={limit}; "
            "expected counts of bytes",
            threshold=threshold,
            rollback=False,
        )
    if limit == 0:
        raise CheckFailed(
            f"redis {shown}: maxmemory is 0 (no limit), so used_memory/maxmemory cannot be "
            f"measured; set maxmemory on the server or drop max_memory_used_ratio",
            measured=None,
            threshold=threshold,
            rollback=False,  # no data: block, this is not evidence of a bad release
        )
    ratio = round(used / limit, 4)
    details = {"used_memory": used, "maxmemory": limit}
    if ratio > ratio_max:
        return Outcome(
            False,
            f"redis {shown}: memory used {ratio:.1%} of maxmemory "
            f"({used} of {limit} bytes), above {ratio_max:.1%}",
            measured=ratio,
            threshold=threshold,
            details=details,
        )
    facts.append(f"memory used {ratio:.1%} of maxmemory")
    return Outcome(
        True,
        f"redis {shown}: " + ", ".join(facts),
        measured=ratio,
        threshold=threshold,
        details=details,
    )


def _parse_info(text: str) -> dict[str, str]:
    info: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    return info


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
