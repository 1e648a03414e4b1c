"""The ``redis`` check kind: PING must answer PONG, and optionally role and memory.

Keys:

- ``redis``: ``redis://[user:password@]host:port/db`` or ``rediss://...`` (TLS, verified
  against the environment's ``ca_bundle``, or the system store without one);
- ``expect_role``: ``"master"``, or ``"replica"`` / ``"slave"`` (the same thing), as
  ``INFO replication`` reports it;
- ``max_memory_used_ratio``: the highest acceptable ``used_memory / maxmemory`` (0 < r <= 1).
  A server with ``maxmemory 0`` has no limit, so the ratio does not exist: the check
  fails closed and says so, because "no data" is never a pass (a block, not a rollback
  trigger). Drop the key for such a server, or give it a ``maxmemory``.

Measured: the ratio when ``max_memory_used_ratio`` is set, else the PING round trip in ms.

redis-py is an optional extra, imported inside :func:`run` only. The check talks to a
single connection with raw commands (no retries, no response callbacks), so PONG is
checked literally and every read is bounded by the time left before the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..redact import redact, redact_url
from .base import CheckConfigError, CheckFailed, Outcome, Target

__all__ = ["KEYS", "ROLLBACK", "run", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "redis": str,
    "expect_role": str,
    "max_memory_used_ratio": float,
}
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True

PIP_HINT = "pip install 'pytest-promotion[redis]'"
_ROLES = {"master": "master", "slave": "slave", "replica": "slave"}


def validate(spec: Mapping[str, Any], where: str) -> None:
    url = spec.get("redis")
    # validated before ${VAR} and {placeholder} substitution: a template is checked at run
    if not isinstance(url, str) or not (url.startswith(("redis://", "rediss://")) or "{" in url):
        raise CheckConfigError(
            f"{where}: key 'redis': expected a redis:// or rediss:// URL, "
            f"found {redact_url(str(url))!r}"
        )
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


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    timeout = float(spec.get("timeout", target.timeout))
    deadline = time.monotonic() + timeout
    url = str(spec["redis"])
    shown = redact(redact_url(url), target.secrets)
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        return Outcome(False, f"redis-py is not installed: {PIP_HINT}")

    kwargs: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "protocol": 2,
        "client_name": "pytest-promotion",
    }
    if url.startswith("rediss://"):
        if target.insecure:
            kwargs["ssl_cert_reqs"] = "none"
            kwargs["ssl_check_hostname"] = False
        else:
            kwargs["ssl_cert_reqs"] = "required"
            if target.ca_bundle:
                kwargs["ssl_ca_certs"] = str(target.path(target.ca_bundle))
    pool = None
    try:
        pool = redis.ConnectionPool.from_url(url, **kwargs)
        conn = pool.get_connection()
        return _probe(spec, conn, deadline, shown)
    except CheckFailed as failed:
        failed.message = redact(failed.message, target.secrets)
        return failed.outcome()
    except redis.AuthenticationError as exc:
        why = redact(_one_line(exc), target.secrets)
        return Outcome(False, f"redis {shown}: authentication failed ({why}); check the password")
    except redis.TimeoutError as exc:
        why = redact(_one_line(exc), target.secrets)
        return Outcome(False, f"redis {shown}: no answer within {timeout:g} s ({why})")
    except (redis.ConnectionError, OSError) as exc:
        why = redact(_one_line(exc), target.secrets)
        if "certificate verify failed" in why:
            return Outcome(
                False,
                f"redis {shown}: TLS verification failed ({why}); is the environment's "
                f"ca_bundle the CA that signed the server's certificate?",
            )
        return Outcome(False, f"redis {shown}: cannot connect ({why})")
    except (redis.RedisError, ValueError) as exc:
        why = redact(_one_line(exc), target.secrets)
        return Outcome(False, f"redis {shown}: {why}")
    finally:
        if pool is not None:
            pool.disconnect()


def _probe(spec: Mapping[str, Any], conn: Any, deadline: float, shown: str) -> Outcome:
    start = time.monotonic()
    reply = _command(conn, deadline, "PING")
    latency_ms = round((time.monotonic() - start) * 1000, 2)
    if _text(reply) != "PONG":
        raise CheckFailed(f"redis {shown}: PING answered {_text(reply)[:80]!r}, expected PONG")
    facts = [f"PONG in {latency_ms:g} ms"]
    role = spec.get("expect_role")
    ratio_max = spec.get("max_memory_used_ratio")
    info: dict[str, str] = {}
    if role is not None or ratio_max is not None:
        section = "default"
        if ratio_max is None or role is None:
            section = "replication" if ratio_max is None else "memory"
        info = _parse_info(_text(_command(conn, deadline, "INFO", section)))
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


def _command(conn: Any, deadline: float, *args: str) -> Any:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise CheckFailed(f"redis: the deadline passed before {args[0]}")
    conn.send_command(*args)
    return conn.read_response(timeout=remaining)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


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
