"""A psycopg connection as the ``postgres`` check kind and the PostgreSQL ledger make
it: the TLS policy of a DSN (:func:`tls_policy`: verify-full unless told otherwise, and
said when not) and a connect bounded by a deadline (:func:`connect`: one attempt per host
and address, each with what is left of it). See :mod:`.postgres` for the rules as a user
reads them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from .base import CheckFailed, Target
from .deadlines import run_within
from .http_transport import environment_ca_bundle

__all__ = [
    "INSECURE",
    "TlsPolicy",
    "connect",
    "hostport",
    "one_line",
    "system_ca_file",
    "tls_policy",
]

INSECURE = "TLS verification disabled (insecure = true)"


class TlsPolicy:
    """The TLS parameters given to libpq, what they mean for the outcome, and the trust
    store certificates are verified against (for the failure message)."""

    def __init__(self, params: dict[str, str], note: str = "", store: str = "") -> None:
        self.params = params
        self.note = note
        self.store = store


def tls_policy(params: Mapping[str, Any], target: Target, shown: str) -> TlsPolicy:
    """verify-full unless the DSN says ``sslmode=disable`` (plaintext, reported) or the
    environment is ``insecure = true`` (encrypted, not verified, reported). A DSN sslmode
    that encrypts without verifying is refused otherwise: it would pass a gate against a
    server nobody has authenticated."""
    mode = str(params.get("sslmode") or "").strip().lower()
    if mode == "disable":
        return TlsPolicy({"sslmode": "disable"}, "without TLS (sslmode=disable)")
    refused = CheckFailed(
        f"postgres {shown}: sslmode={mode} in the DSN does not verify the server's "
        "certificate: use sslmode=verify-full (the default) or sslmode=disable, or set "
        "insecure = true on the environment"
    )
    if mode not in ("", "verify-full", "verify-ca"):  # allow, prefer, require: unverified
        if target.insecure:
            return TlsPolicy({"sslmode": mode}, INSECURE)
        raise refused
    if mode == "verify-ca" and not target.insecure:
        raise refused
    if not mode and target.insecure:
        return TlsPolicy({"sslmode": "require"}, INSECURE)
    tls = _trust(params, target, shown)
    if mode == "verify-ca":  # insecure = true: the CA is verified, the host name is not
        tls.params["sslmode"] = mode
        tls.note = "host name not verified (sslmode=verify-ca, insecure = true)"
    return tls


def _trust(params: Mapping[str, Any], target: Target, shown: str) -> TlsPolicy:
    """sslmode=verify-full against the DSN's sslrootcert, else ca_bundle, else the system
    store (also for ``sslrootcert=system``, which the wheel's libpq would look up in the
    wrong place)."""
    root = str(params.get("sslrootcert") or "")
    if root and root != "system":  # the DSN names its own trust store
        return TlsPolicy({"sslmode": "verify-full"}, store=f"sslrootcert {root}")
    if target.ca_bundle and not root:
        path = target.path(target.ca_bundle)
        if not path.is_file():
            raise CheckFailed(f"postgres {shown}: ca_bundle {path} does not exist")
        return TlsPolicy(
            {"sslmode": "verify-full", "sslrootcert": str(path)}, store=f"ca_bundle {path}"
        )
    system = system_ca_file()
    if system is None:
        raise CheckFailed(
            f"postgres {shown}: no system CA bundle found to verify the server's certificate: "
            "set ca_bundle on the environment (or sslmode=disable in the DSN)"
        )
    return TlsPolicy(
        {"sslmode": "verify-full", "sslrootcert": system},
        store=f"the system trust store ({system})",
    )


def system_ca_file() -> str | None:
    """The CA file a postgres check trusts without ``ca_bundle``: the one requests takes
    from the environment (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``), else the system
    OpenSSL store the tls check uses (``SSL_CERT_FILE`` honoured), else certifi's.

    libpq's own ``sslrootcert=system`` (libpq >= 16) is not used: the OpenSSL inside the
    psycopg-binary wheel looks in its build directory, not in the system's."""
    import ssl

    candidates = [environment_ca_bundle(), ssl.get_default_verify_paths().cafile]
    with suppress(ImportError):
        import certifi

        candidates.append(certifi.where())
    return next((c for c in candidates if c and os.path.isfile(c)), None)


def connect(
    psycopg: Any,
    params: dict[str, Any],
    tls: TlsPolicy,
    deadline: float,
    timeout: float,
    shown: str,
) -> Any:
    """One attempt per host (and per address of a host name), as psycopg makes them, each
    with what is left of the deadline; the hosts not tried by then are reported.

    libpq counts ``connect_timeout`` in whole seconds and never less than 2: an attempt
    started with under 2 s left may end up to 2 s after the deadline."""
    try:
        from psycopg.conninfo import conninfo_attempts
    except ImportError:  # psycopg < 3.2: one attempt; libpq bounds each host by itself
        attempts = [params]
    else:
        try:  # it resolves the host names: a lookup is bounded by the deadline too
            attempts = run_within(lambda: conninfo_attempts(params), deadline, "resolve")
        except TimeoutError:
            raise CheckFailed(
                f"postgres {shown}: cannot resolve its host names within {timeout:g} s"
            ) from None
        except (psycopg.OperationalError, UnicodeError) as exc:  # no host could be resolved
            raise CheckFailed(f"postgres {shown}: cannot connect ({one_line(exc)})") from None
    failures: list[str] = []
    tls_failure = ""
    for i, attempt in enumerate(attempts):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failures.append(f"{len(attempts) - i} more host(s) not tried within {timeout:g} s")
            break
        wait_s = max(2, int(remaining))
        try:
            return psycopg.connect(
                **{**attempt, **tls.params},
                connect_timeout=wait_s,
                tcp_user_timeout=max(1, int(timeout * 1000)),
                application_name="pytest-promotion",
            )
        except psycopg.errors.ConnectionTimeout:
            where = hostport(attempt.get("host") or attempt.get("hostaddr"), attempt.get("port"))
            failures.append(f"no answer from {where} within {wait_s} s")
        except psycopg.OperationalError as exc:
            why = one_line(exc)
            if tls.store and ("certificate" in why or "SSL error" in why):
                tls_failure = f"TLS verification failed against {tls.store} ({why})"
                why = tls_failure
            elif "does not support SSL" in why:
                tls_failure = (
                    "the server does not offer TLS and sslmode=verify-full requires it; "
                    "add sslmode=disable to the DSN to connect without TLS"
                )
                why = tls_failure
            failures.append(why)
    if len(failures) == 1 and tls_failure:
        raise CheckFailed(f"postgres {shown}: {tls_failure}")
    raise CheckFailed(f"postgres {shown}: cannot connect ({'; '.join(failures)})")


def hostport(host: Any, port: Any) -> str:
    host = str(host or "localhost")
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port or 5432}"


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
