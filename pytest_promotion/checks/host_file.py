"""The ``file`` check kind: files on the environment's hosts are locked down.

```toml
[[environments.prod.checks]]
name = "tls-key-private"
file = ["/app/certs/server.key", "/app/.env"]
mode = "0600"                  # exact permission bits; or max_mode = "0640" (no bit beyond)
owner = "app"                  # a name or a numeric id
group = "app"
not_world_readable = true
# exists = false               # the file must NOT be there (a leaked backup, say)
# hosts = ["ssh://deploy@web1"] # default: the environment's hosts
```

The hosts are pytest-testinfra host specs (``local://``, ``ssh://user@host``,
``docker://container``, ``kubectl://pod?namespace=ns``), reached through testinfra's
backends, all at once, within the check's deadline. One ``stat`` per file and host, whose
exit status is read exactly: "no such file" is a missing file; anything else (ssh's 255, a
missing docker binary, permission denied on a parent directory) is the backend's error,
never taken for a missing file, so ``exists = false`` cannot pass on an unreachable host.

A failure blocks (a readable key is not an outage; ``trigger = "rollback"`` may say
otherwise); a host that cannot be read blocks too. Every line names host, file, expected
and found.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from ..redact import redact, redact_url
from .base import CheckConfigError, Outcome, Target

__all__ = ["CONCURRENT", "KEYS", "ROLLBACK", "FileStat", "run", "validate"]

KEYS: dict[str, type | tuple[type, ...]] = {
    "file": (str, list),
    "mode": str,
    "max_mode": str,
    "owner": (str, int),
    "group": (str, int),
    "exists": bool,
    "not_world_readable": bool,
    "hosts": list,
}
ROLLBACK = False
CONCURRENT = True
_STAT = "stat -Lc '%%a %%u %%g %%U %%G' -- %s"
_SCHEMES = ("local", "ssh", "paramiko", "docker", "podman", "kubectl", "openshift", "ansible")


def prepare() -> None:
    """Imports a probe pool's threads would otherwise do on first use."""
    with suppress(ImportError):  # run() says so, in the gate's line
        import testinfra  # noqa: F401


def _files(spec: Mapping[str, Any]) -> list[str]:
    value = spec.get("file")
    return [value] if isinstance(value, str) else list(value or [])


def _octal(value: Any) -> int | None:
    if not isinstance(value, str) or not 3 <= len(value) <= 5:
        return None
    try:
        number = int(value, 8)
    except ValueError:
        return None
    return number if 0 <= number <= 0o7777 else None


def validate(spec: Mapping[str, Any], where: str) -> None:
    def bad(key: str, expected: str, found: Any) -> CheckConfigError:
        return CheckConfigError(f"{where}: key {key!r}: expected {expected}, found {found!r}")

    files = _files(spec)
    if not files or not all(isinstance(f, str) and f.startswith("/") for f in files):
        raise bad("file", "an absolute path or a list of them", spec.get("file"))
    for key in ("mode", "max_mode"):
        if key in spec and _octal(spec[key]) is None:
            raise bad(key, 'permission bits in octal, such as "0600"', spec[key])
    if "mode" in spec and "max_mode" in spec:
        raise bad("max_mode", "either mode or max_mode, not both", spec["max_mode"])
    for key in ("owner", "group"):
        value = spec.get(key, "x")
        if isinstance(value, bool) or value == "" or (isinstance(value, int) and value < 0):
            raise bad(key, "a name or a numeric id", value)
    if spec.get("exists", True) is False:
        extra = [
            k for k in ("mode", "max_mode", "owner", "group", "not_world_readable") if k in spec
        ]
        if extra:
            raise bad(extra[0], "nothing else when exists = false", spec[extra[0]])
    elif not any(
        k in spec for k in ("mode", "max_mode", "owner", "group", "not_world_readable", "exists")
    ):
        raise bad(
            "file",
            "at least one of mode, max_mode, owner, group, not_world_readable, exists",
            spec["file"],
        )
    hosts = spec.get("hosts", ["local://"])
    if not hosts or not all(isinstance(h, str) and h.split("://")[0] in _SCHEMES for h in hosts):
        shown = [redact_url(h) if isinstance(h, str) else h for h in hosts]
        raise bad(
            "hosts", "testinfra host specs such as local://, ssh://user@host, docker://name", shown
        )


@dataclass(frozen=True)
class FileStat:
    mode: int
    uid: str
    gid: str
    user: str
    group: str


def _stat(host: Any, path: str) -> FileStat | str | None:
    """The file's stat, None when it does not exist, or the backend's error (one line)."""
    result = host.run(_STAT, path)
    if result.rc == 0:
        parts = result.stdout.split()
        if len(parts) == 5:
            return FileStat(int(parts[0], 8), *parts[1:])
        return f"unexpected stat output {result.stdout.strip()[:80]!r}"
    err = (result.stderr or result.stdout or "").strip()
    # stat's own words about this path: a backend's "no such file" (docker's socket, a
    # kubeconfig) names another path and is an error, not a missing file
    if result.rc == 1 and "No such file or directory" in err and path in err:
        return None
    first = err.splitlines()[0][:160] if err else "no output"
    return f"could not be read (exit {result.rc}: {first})"


def _problems(spec: Mapping[str, Any], path: str, found: FileStat | str | None) -> list[str]:
    want_exists = spec.get("exists", True)
    if isinstance(found, str):
        return [f"{path} {found}"]
    if found is None:
        return [] if want_exists is False else [f"{path} missing"]
    if want_exists is False:
        return [f"{path} exists (mode {found.mode:04o}), expected no such file"]
    problems = []
    mode = _octal(spec.get("mode"))
    if mode is not None and found.mode != mode:
        problems.append(f"{path} mode {found.mode:04o}, expected {mode:04o}")
    most = _octal(spec.get("max_mode"))
    if most is not None and found.mode & ~most:
        problems.append(f"{path} mode {found.mode:04o}, expected at most {most:04o}")
    if spec.get("not_world_readable") and found.mode & 0o004:
        problems.append(f"{path} mode {found.mode:04o} is world-readable")
    for key, name, number in (("owner", found.user, found.uid), ("group", found.group, found.gid)):
        if key in spec and str(spec[key]) not in (name, number):
            problems.append(f"{path} {key} {name}, expected {spec[key]}")
    return problems


def _inspect(
    spec_host: str, files: list[str], spec: Mapping[str, Any], budget: float
) -> tuple[int, list[str]]:
    """How many of ``files`` have problems on one host, and the problems (raises what the
    backend raises)."""
    import testinfra

    extra: dict[str, Any] = {}
    if spec_host.startswith(("ssh://", "paramiko://")):
        extra["timeout"] = max(1, int(budget))  # ssh's ConnectTimeout
    host = testinfra.get_host(spec_host, **extra)
    problems: list[str] = []
    bad = 0
    for path in files:
        found = _problems(spec, path, _stat(host, path))
        bad += bool(found)
        problems += found
    return bad, problems


def _describe(exc: Exception) -> str:
    """One line for a backend's exception. The ssh backend raises RuntimeError with the
    whole CommandResult (its repr holds the backend object and the command) when ssh
    itself fails: its exit status and the first line of its stderr are what matters."""
    result: Any = exc.args[0] if exc.args else None
    if hasattr(result, "exit_status") and hasattr(result, "stderr"):
        err = str(result.stderr or "").strip()
        first = err.splitlines()[0][:160] if err else "no output"
        return f"unreachable (exit {result.exit_status}: {first})"
    text = str(exc).strip().splitlines()
    return f"backend error: {type(exc).__name__}: {text[0][:160] if text else 'no reason given'}"


def _threshold(spec: Mapping[str, Any]) -> str:
    if spec.get("exists", True) is False:
        return "absent"
    parts = [f"mode {spec['mode']}"] if "mode" in spec else []
    parts += [f"mode <= {spec['max_mode']}"] if "max_mode" in spec else []
    parts += [f"{k} {spec[k]}" for k in ("owner", "group") if k in spec]
    parts += ["not world-readable"] if spec.get("not_world_readable") else []
    return ", ".join(parts) or "exists"


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    files = _files(spec)
    hosts = [str(h) for h in spec.get("hosts") or target.settings.get("hosts") or []]
    threshold = _threshold(spec)
    if not hosts:
        return Outcome(
            False,
            f"no hosts to check {', '.join(files)} on: set hosts in [environments.{target.env}] "
            "or in the check",
            threshold=threshold,
        )
    try:
        import testinfra  # noqa: F401
    except ImportError:
        return Outcome(
            False,
            "pytest-testinfra is not installed: pip install 'pytest-promotion[hosts]'",
            threshold=threshold,
        )
    budget = target.timeout
    deadline = time.monotonic() + budget
    results: dict[str, tuple[int, list[str]]] = {}

    def work(h: str) -> None:
        try:
            results[h] = _inspect(h, files, spec, budget)
        except Exception as exc:  # a testinfra backend error: the host could not be read
            results[h] = (len(files), [_describe(exc)])

    threads = [
        threading.Thread(target=work, args=(h,), daemon=True, name=f"file@{h}") for h in hosts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.001))
    lines: list[str] = []
    bad = 0
    for h in hosts:
        # a host still running at the deadline is abandoned (its daemon thread ends alone)
        count, found = results.get(h, (len(files), [f"no answer within {budget:g} s"]))
        lines += [f"{redact_url(h)}: {p}" for p in found]
        bad += count
    total = len(hosts) * len(files)
    measured = f"{total - bad} of {total} files ok"
    if len(hosts) > 1:
        measured += f" on {len(hosts)} hosts"
    if lines:
        shown = "; ".join(lines[:5]) + (f"; and {len(lines) - 5} more" if len(lines) > 5 else "")
        message = redact(shown, target.secrets)
        return Outcome(False, message, measured, threshold, details={"problems": lines[:50]})
    where = redact_url(hosts[0]) if len(hosts) == 1 else f"{len(hosts)} hosts"
    message = f"{', '.join(files)} on {where}: {threshold}"
    return Outcome(True, redact(message, target.secrets), measured, threshold)
