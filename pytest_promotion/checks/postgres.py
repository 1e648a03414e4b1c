"""The ``postgres`` check kind: connect and ``SELECT 1``, optionally role and lag.

Keys:

- ``postgres``: a libpq DSN, as a URL (``postgresql://user:pw@host:5432/db``) or as
  key=value pairs (``host=db port=5432 dbname=app user=gate password=...``);
- ``expect_read_write``: ``true``: ``SHOW transaction_read_only`` must be ``off`` (a
  writable primary); ``false``: it must be ``on`` (a standby, or a read-only role);
- ``max_replication_lag_s``: the highest acceptable replication lag in seconds.

Replication lag, measured on the server the DSN names:

- on a standby it is 0 when the WAL receiver is streaming and everything received has
  been replayed; otherwise ``now() - pg_last_xact_replay_timestamp()``. A standby that
  has not replayed any transaction yet has no lag to measure: the check fails closed
  (a block, not a rollback trigger).
  A standby whose WAL receiver is not streaming (or is not visible to the role: grant
  ``pg_read_all_stats``) is judged by the age of its last replayed transaction, which
  is conservative on an idle primary;
- on a primary (not in recovery) there is nothing to lag behind: the lag is reported
  as 0 and the message says "primary". Point the check at the standby to measure it.

Measured: the lag in seconds when ``max_replication_lag_s`` is set, else the time to
connect and run ``SELECT 1`` in ms.

TLS: without ``sslmode`` in the DSN the server's certificate is verified
(``sslmode=verify-full``) against the environment's ``ca_bundle``, else the system store
(:func:`system_ca_file`); a ``sslrootcert`` in the DSN wins over both. ``sslmode=disable``
connects in plaintext and says "without TLS". ``allow``, ``prefer``, ``require`` and
``verify-ca`` are refused (they do not authenticate the server) unless the environment
has ``insecure = true``, which is then the default as ``require`` and is reported.

Deadlines: the check's timeout bounds it all. Each connection attempt (one per host, and
per address of a host name) gets what is left of it as ``connect_timeout``; hosts not
tried by the deadline are reported. libpq counts ``connect_timeout`` in whole seconds and
never less than 2, so a connect can end up to 2 s past the deadline. The queries are
bounded by a :class:`~.deadlines.SocketDeadline` (a server that stops answering: "no
answer from host:port within N s") and, on the server, by a transaction-local
``statement_timeout`` (``set_config(..., true)``, so that it works behind PgBouncer's
transaction pooling and never leaks into a pooled server connection). The transaction is
rolled back: the check writes nothing.

psycopg 3 is an optional extra, imported inside :func:`run` only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from ..redact import redact, redact_url
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .deadlines import SocketDeadline
from .postgres_connect import (
    TlsPolicy,
    connect,
    hostport,
    one_line,
    system_ca_file,
    tls_policy,
)

__all__ = ["KEYS", "ROLLBACK", "run", "system_ca_file", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "postgres": str,
    "expect_read_write": bool,
    "max_replication_lag_s": float,
}
ROLLBACK = True
# A network probe: started with the others when the run begins (see checks/pool.py).
CONCURRENT = True

PIP_HINT = "pip install 'pytest-promotion[postgres]'"

_STATE_SQL = """
SELECT pg_is_in_recovery(),
       current_setting('transaction_read_only'),
       CASE WHEN pg_is_in_recovery() THEN
         CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                   AND (SELECT status FROM pg_stat_wal_receiver) = 'streaming'
              THEN 0
              ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
         END
       END
"""


def validate(spec: Mapping[str, Any], where: str) -> None:
    dsn = spec.get("postgres")
    ok = isinstance(dsn, str) and bool(dsn.strip())
    if ok and "{" in str(dsn):
        pass  # a ${VAR} or {placeholder} template: checked once substituted, at run
    elif ok and "://" in str(dsn):
        ok = str(dsn).startswith(("postgres://", "postgresql://"))
    elif ok:
        ok = "=" in str(dsn)
    if not ok:
        raise CheckConfigError(
            f"{where}: key 'postgres': expected a postgresql:// URL or key=value DSN, "
            f"found {redact(redact_url(str(dsn)))!r}"
        )
    lag = spec.get("max_replication_lag_s")
    if lag is not None and not (lag >= 0 and math.isfinite(lag)):
        raise CheckConfigError(
            f"{where}: key 'max_replication_lag_s': expected a number >= 0, found {lag!r}"
        )


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    timeout = float(spec.get("timeout", target.timeout))
    deadline = time.monotonic() + timeout
    dsn = str(spec["postgres"])
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return Outcome(False, f"psycopg is not installed: {PIP_HINT}")
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        why = redact(one_line(exc), target.secrets)
        return Outcome(False, f"postgres: the DSN does not parse ({why})")
    secrets = (*target.secrets, str(params.get("password") or ""))
    shown = redact(_describe(params), secrets)
    start = time.monotonic()
    try:
        tls = tls_policy(params, target, shown)
        conn = connect(psycopg, params, tls, deadline, timeout, shown)
        try:
            with SocketDeadline(deadline, conn.fileno()) as guard:
                try:
                    outcome = _probe(spec, conn, deadline, start, shown)
                except psycopg.Error as exc:
                    if not guard.fired:
                        raise
                    where = hostport(conn.info.host, conn.info.port)
                    raise CheckFailed(
                        f"postgres {shown}: no answer from {where} within {timeout:g} s"
                    ) from exc
        finally:
            conn.close()  # sends Terminate, waits for nothing
        return _noted(outcome, tls, secrets)
    except CheckFailed as failed:
        failed.message = redact(failed.message, secrets)
        return failed.outcome()
    except psycopg.errors.QueryCanceled:
        return Outcome(False, f"postgres {shown}: a query ran past the {timeout:g} s deadline")
    except psycopg.Error as exc:
        why = redact(one_line(exc), secrets)
        return Outcome(False, f"postgres {shown}: {why}")
    except OSError as exc:
        why = redact(one_line(exc), secrets)
        return Outcome(False, f"postgres {shown}: cannot connect ({why})")


def _noted(outcome: Outcome, tls: TlsPolicy, secrets: tuple[str, ...]) -> Outcome:
    outcome.details["tls"] = tls.params["sslmode"]
    if tls.note:
        outcome.message += f"; {tls.note}"
        if "insecure" in tls.note:
            outcome.details.setdefault("warnings", []).append(tls.note)
    outcome.message = redact(outcome.message, secrets)
    return outcome


def _probe(
    spec: Mapping[str, Any], conn: Any, deadline: float, start: float, shown: str
) -> Outcome:
    remaining_ms = int((deadline - time.monotonic()) * 1000)
    if remaining_ms <= 0:
        raise CheckFailed(f"postgres {shown}: the deadline passed while connecting")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('statement_timeout', %s, true)", (f"{remaining_ms}ms",))
            cur.execute("SELECT 1")
            row = cur.fetchone()
            latency_ms = round((time.monotonic() - start) * 1000, 2)
            if row is None or row[0] != 1:
                raise CheckFailed(f"postgres {shown}: SELECT 1 returned {row!r}")
            cur.execute(_STATE_SQL)
            state = cur.fetchone()
    finally:
        conn.rollback()
    if state is None:
        raise CheckFailed(f"postgres {shown}: the server state query returned no row")
    in_recovery, read_only, lag = bool(state[0]), str(state[1]), state[2]
    role = "standby" if in_recovery else "primary"
    facts = [
        f"SELECT 1 in {latency_ms:g} ms",
        role,
        "read-only" if read_only == "on" else "read-write",
    ]
    details: dict[str, Any] = {"role": role, "transaction_read_only": read_only}

    expect_rw = spec.get("expect_read_write")
    if expect_rw is not None:
        want = "off" if expect_rw else "on"
        if read_only != want:
            wanted = "read-write" if expect_rw else "read-only"
            raise CheckFailed(
                f"postgres {shown}: transaction_read_only is {read_only} on this {role}, "
                f"expected {wanted}",
                measured=read_only,
                threshold=f"transaction_read_only == {want}",
            )

    lag_max = spec.get("max_replication_lag_s")
    if lag_max is None:
        return Outcome(
            True,
            f"postgres {shown}: " + ", ".join(facts),
            measured=latency_ms,
            threshold="SELECT 1",
            unit="ms",
            details=details,
        )
    threshold = f"<= {float(lag_max):g}"
    if not in_recovery:
        lag_s = 0.0
        facts.append("replication lag 0 s (primary, not a standby)")
    elif lag is None:
        raise CheckFailed(
            f"postgres {shown}: standby has not replayed any transaction yet; "
            f"replication lag cannot be measured",
            threshold=threshold,
            rollback=False,  # no data: block, not a rollback trigger
        )
    else:
        lag_s = round(max(0.0, float(lag)), 3)
        if lag_s > float(lag_max):
            raise CheckFailed(
                f"postgres {shown}: replication lag {lag_s:g} s, above {float(lag_max):g} s",
                measured=lag_s,
                threshold=threshold,
                unit="s",
            )
        facts.append(f"replication lag {lag_s:g} s")
    details["replication_lag_s"] = lag_s
    return Outcome(
        True,
        f"postgres {shown}: " + ", ".join(facts),
        measured=lag_s,
        threshold=threshold,
        unit="s",
        details=details,
    )


def _describe(params: Mapping[str, Any]) -> str:
    """host:port/dbname, without user or password."""
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    db = str(params.get("dbname") or params.get("user") or "")
    return f"{host}:{port}/{db}"
