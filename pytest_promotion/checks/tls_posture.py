"""TLS posture for the ``tls`` kind: what a server must *refuse*.

- ``refuse_below = "1.2"``: a handshake at each older version (1.0, 1.1) must fail. A
  version the local OpenSSL cannot offer is not tested: a warning line, never a pass in
  disguise (when no older version could be tested at all, the measured value says so).
- ``forbid_ciphers = ["RC4", "3DES", "NULL", "EXPORT"]``: OpenSSL cipher names or patterns;
  a handshake offering only those (TLS 1.0-1.2: TLS 1.3 has no weak suites) must fail.
- ``require_forward_secrecy = true``: the negotiated cipher is (EC)DHE or TLS 1.3, and a
  handshake offering only RSA key exchange must fail.

Every probe shares the check's deadline: a server that stops answering fails the check
("no answer"), it is never counted as a refusal. Probes do not verify the certificate:
they ask whether the server *would talk* at that version or with that cipher, and the
check's main handshake has verified it already.
"""

from __future__ import annotations

import functools
import re
import socket
import threading
import time
import warnings
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import deadlines
from .base import CheckConfigError, CheckFailed, Outcome
from .tcp import connect, format_hostport

if TYPE_CHECKING:
    import ssl

__all__ = ["KEYS", "Posture", "apply", "check_posture", "uses_posture", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "refuse_below": str,
    "forbid_ciphers": list,
    "require_forward_secrecy": bool,
}
_OLD = ("TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3")
_LABEL = {"TLSv1": "TLS 1.0", "TLSv1_1": "TLS 1.1", "TLSv1_2": "TLS 1.2", "TLSv1_3": "TLS 1.3"}
_STEP = {"1.0": 0, "1": 0, "1.1": 1, "1.2": 2, "1.3": 3}
# cipher suites without forward secrecy: static RSA, PSK, SRP key exchange
_NO_FS = "kRSA:kPSK:kRSAPSK:kSRP"
_WARNINGS = threading.Lock()  # catch_warnings is process-wide: one probe at a time
_CIPHER_NAME = re.compile(r"^[!+\-]?[A-Za-z0-9_+\-=@.]+$")


def uses_posture(spec: Mapping[str, Any]) -> bool:
    return any(key in spec for key in KEYS)


def _step(value: str) -> int:
    text = value.strip().lower().removeprefix("tlsv").removeprefix("tls").strip()
    if text not in _STEP:
        raise ValueError(value)
    return _STEP[text]


def validate(spec: Mapping[str, Any], where: str) -> None:
    if "refuse_below" in spec:
        value = spec["refuse_below"]
        try:
            step = _step(value)
        except ValueError:
            step = -1
        if step < 1:
            raise CheckConfigError(
                f'{where}: key \'refuse_below\': expected "1.1", "1.2" or "1.3", found {value!r}'
            )
    ciphers = spec.get("forbid_ciphers", ["x"])
    if not ciphers or not all(isinstance(c, str) and _CIPHER_NAME.match(c) for c in ciphers):
        raise CheckConfigError(
            f"{where}: key 'forbid_ciphers': expected a list of OpenSSL cipher names or "
            f'patterns such as ["RC4", "3DES", "NULL"], found {ciphers!r}'
        )


@dataclass
class Posture:
    """What the probes found: failures (each one line), warnings, what was tested."""

    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    untested: str | None = None  # for the measured column


def _context(versions: tuple[str, str], ciphers: str | None) -> ssl.SSLContext:
    """An unverified client context for exactly ``versions`` (ValueError/SSLError when the
    local library cannot offer them)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # @SECLEVEL=0: the point is to offer what a careful client never would
    ctx.set_ciphers(f"{ciphers or 'ALL:COMPLEMENTOFALL'}:@SECLEVEL=0")
    # TLS 1.0 and 1.1 are deprecated in ssl (a DeprecationWarning each time they are set):
    # probing for them is this module's job, and the warning would only alarm the user.
    with _WARNINGS, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = getattr(ssl.TLSVersion, versions[0])
        ctx.maximum_version = getattr(ssl.TLSVersion, versions[1])
    if ctx.minimum_version != getattr(ssl.TLSVersion, versions[0]):
        raise ValueError(versions[0])  # clamped by the system's policy
    return ctx


@dataclass(frozen=True)
class _Probe:
    host: str
    port: int
    server_name: str
    deadline: float
    budget: float

    def where(self) -> str:
        return format_hostport(self.host, self.port)

    def handshake(self, ctx: ssl.SSLContext) -> tuple[str, str] | None:
        """(version, cipher) when the server completes the handshake, None when it refuses.
        CheckFailed when it does not answer in time or cannot be reached; ValueError when
        the local library refused to offer anything (nothing was sent)."""
        import ssl

        if time.monotonic() >= self.deadline:
            raise CheckFailed(self._late())
        sock = connect(self.host, self.port, self.deadline, budget=self.budget)
        tls = ctx.wrap_socket(sock, server_hostname=self.server_name, do_handshake_on_connect=False)
        dog = deadlines.schedule(self.deadline, functools.partial(_shutdown, tls))
        try:
            tls.do_handshake()
            cipher = tls.cipher()
            return tls.version() or "?", cipher[0] if cipher else "?"
        except ssl.SSLError as exc:
            reason = str(getattr(exc, "reason", "") or "")
            if reason in ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "NO_CIPHER_MATCH"):
                raise ValueError(reason) from None
            if time.monotonic() >= self.deadline:
                raise CheckFailed(self._late()) from None
            return None  # an alert, or the server hanging up on the hello: refused
        except TimeoutError:
            raise CheckFailed(self._late()) from None
        except OSError:
            if time.monotonic() >= self.deadline:
                raise CheckFailed(self._late()) from None
            return None  # reset during the handshake: refused
        finally:
            deadlines.cancel(dog)
            tls.close()
            sock.close()

    def _late(self) -> str:
        return f"no answer from {self.where()} to the TLS posture probes within {self.budget:g} s"


def _shutdown(sock: socket.socket) -> None:
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _refuse_below(probe: _Probe, below: str, out: Posture) -> None:
    step = _step(below)
    tested = []
    for version in _OLD[:step]:
        label = _LABEL[version]
        try:
            got = probe.handshake(_context((version, version), None))
        except (ValueError, AttributeError, _ssl_error()):
            out.warnings.append(f"{label} not tested: the local library cannot offer it")
            continue
        tested.append(label)
        if got is not None:
            out.failures.append(
                f"{probe.where()} accepted {label} ({got[1]}), expected it refused "
                f"(refuse_below {below})"
            )
    if tested:
        out.passed.append(f"refuses {', '.join(tested)}")
    else:
        out.untested = f"refuse_below {below} untested (the local library offers no older version)"
        out.warnings.append(out.untested)


def _ssl_error() -> type[Exception]:
    import ssl

    return ssl.SSLError


def _offerable(pattern: str) -> bool:
    try:
        _context(("TLSv1", "TLSv1_2"), pattern)
    except (ValueError, AttributeError, _ssl_error()):
        try:  # a system policy may forbid TLS 1.0 in the client: try 1.2 alone
            _context(("TLSv1_2", "TLSv1_2"), pattern)
        except (ValueError, AttributeError, _ssl_error()):
            return False
    return True


def _forbid_ciphers(probe: _Probe, patterns: list[str], out: Posture) -> None:
    offer = [p for p in patterns if _offerable(p)]
    for p in patterns:
        if p not in offer:
            out.warnings.append(f"cipher {p} not tested: the local library cannot offer it")
    if not offer:
        return
    joined = ":".join(offer)
    try:
        ctx = _context(("TLSv1", "TLSv1_2"), joined)
    except (ValueError, AttributeError, _ssl_error()):
        ctx = _context(("TLSv1_2", "TLSv1_2"), joined)
    try:
        got = probe.handshake(ctx)
    except ValueError:
        out.warnings.append(f"ciphers {joined} not tested: the local library cannot offer them")
        return
    if got is not None:
        out.failures.append(
            f"{probe.where()} accepted forbidden cipher {got[1]} ({got[0]}), "
            f"expected none of {', '.join(patterns)}"
        )
    else:
        out.passed.append(f"refuses cipher suites {', '.join(offer)}")


def _forward_secrecy(probe: _Probe, version: str | None, cipher: str | None, out: Posture) -> None:
    if version != "TLSv1.3" and cipher and not re.match(r"^(ECDHE|DHE|EDH)-", cipher):
        out.failures.append(
            f"{probe.where()} negotiated {cipher} ({version}) without forward secrecy "
            "(require_forward_secrecy)"
        )
        return
    try:
        got = probe.handshake(_context(("TLSv1_2", "TLSv1_2"), _NO_FS))
    except (ValueError, _ssl_error()):
        out.warnings.append(
            "forward secrecy not probed: the local library offers no RSA key exchange"
        )
        return
    if got is not None:
        out.failures.append(
            f"{probe.where()} accepted {got[1]} ({got[0]}) without forward secrecy "
            "(require_forward_secrecy)"
        )
    else:
        out.passed.append("forward secrecy")


def check_posture(
    spec: Mapping[str, Any],
    host: str,
    port: int,
    server_name: str,
    negotiated: tuple[str | None, str | None],
    deadline: float,
    budget: float,
) -> Posture:
    """Run the posture probes ``spec`` asks for; CheckFailed when the server stops
    answering (that is no evidence of a refusal)."""
    probe = _Probe(host, port, server_name, deadline, budget)
    out = Posture()
    if "refuse_below" in spec:
        _refuse_below(probe, spec["refuse_below"], out)
    if spec.get("forbid_ciphers"):
        _forbid_ciphers(probe, list(spec["forbid_ciphers"]), out)
    if spec.get("require_forward_secrecy"):
        _forward_secrecy(probe, negotiated[0], negotiated[1], out)
    return out


def threshold(spec: Mapping[str, Any]) -> list[str]:
    """The posture part of the threshold column."""
    parts = []
    if "refuse_below" in spec:
        parts.append(f"refuse < TLS {spec['refuse_below']}")
    if spec.get("forbid_ciphers"):
        parts.append("no " + "/".join(spec["forbid_ciphers"]))
    if spec.get("require_forward_secrecy"):
        parts.append("forward secrecy")
    return parts


def _modern_context() -> ssl.SSLContext:
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def apply(
    outcome: Outcome,
    spec: Mapping[str, Any],
    where: tuple[str, int, str],
    deadline: float,
    budget: float,
) -> Outcome:
    """Add the posture ``spec`` asks for to the certificate check's ``outcome``.

    A certificate failure is reported as it is (a health problem, rollback by default);
    a posture failure blocks (a weak protocol is not an outage) unless the check's
    ``trigger`` says otherwise; probes that get no answer block too (no evidence)."""
    if not uses_posture(spec) or not outcome.passed:
        return outcome
    host, port, name = where
    probe = _Probe(host, port, name, deadline, budget)
    try:
        got = probe.handshake(_modern_context())
        if got is None:
            raise CheckFailed(f"{probe.where()} refused a second handshake (posture probes)")
        posture = check_posture(spec, host, port, name, got, deadline, budget)
    except (CheckFailed, ValueError) as exc:
        text = exc.message if isinstance(exc, CheckFailed) else f"posture probe failed: {exc}"
        outcome.passed, outcome.message, outcome.rollback = False, text, False
        return outcome
    days = outcome.measured
    measured = f"{got[0]} {got[1]}"
    if isinstance(days, float | int):
        measured += f", {days:g} days"
    if posture.untested:
        measured += f"; {posture.untested}"
    outcome.measured, outcome.unit = measured, ""
    outcome.threshold = ", ".join([outcome.threshold or "", *threshold(spec)]).strip(", ")
    outcome.details.setdefault("warnings", []).extend(posture.warnings)
    outcome.details["cipher"] = got[1]
    outcome.details["posture"] = {"failures": posture.failures, "passed": posture.passed}
    shown = posture.warnings  # in the message too: every report shows the message
    if posture.failures:
        outcome.passed, outcome.rollback = False, False
        outcome.message = "; ".join(posture.failures + shown)
    else:
        outcome.message = "; ".join([outcome.message, *posture.passed, *shown])
    return outcome
