"""The rollback command: a template rendered to argv (never a shell) and, on request, run
with a deadline, its output capped and redacted."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .process import Tail, collect, kill_group, spawn
from .redact import redact
from .schema import VALUE_RE

if TYPE_CHECKING:
    from .decision import Decision

__all__ = [
    "VALUE_RE",
    "RenderError",
    "attach_rollback",
    "render",
    "run_rollback",
    "template_fields",
]

_FIELD = re.compile(r"\{([A-Za-z_]+)\}")
OUTPUT_CAP = 64 * 1024


class RenderError(ValueError):
    """The template cannot be rendered safely."""


def render(template: Sequence[str], values: Mapping[str, str | None]) -> list[str]:
    """Fill ``{env}``, ``{version}``, ``{previous_version}`` into each argument.

    >>> render(["deploy", "--env={env}"], {"env": "prod"})
    ['deploy', '--env=prod']
    """

    def sub(m: re.Match[str]) -> str:
        key = m[1]
        if key not in values:
            raise RenderError(f"unknown placeholder {{{key}}} (known: {', '.join(sorted(values))})")
        value = values[key]
        if value is None:
            raise RenderError(f"{{{key}}} is not known for this run")
        if not VALUE_RE.match(value):
            raise RenderError(f"{{{key}}} value {value!r} is not a plain name or version")
        return value

    return [_FIELD.sub(sub, arg) for arg in template]


@dataclass
class RollbackResult:
    returncode: int | None
    output: str
    timed_out: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "returncode": self.returncode,
            "output": self.output,
            "timed_out": self.timed_out,
            "error": self.error,
        }


def run_rollback(argv: Sequence[str], timeout: float, cwd: str | None = None) -> RollbackResult:
    """Run the rollback command, its output read into a bounded buffer.

    The whole run is bounded (see :mod:`.process`): ``timeout`` for the command, then at
    most ``GRACE`` seconds to read what it already wrote. However it ends (exit, deadline,
    Ctrl-C or SIGTERM), its whole process group is killed.
    """
    try:
        proc = spawn(list(argv), cwd=cwd, stderr=subprocess.STDOUT)  # no PROMOTION_* vars
    except OSError as exc:
        return RollbackResult(None, "", error=f"cannot run {argv[0]}: {exc.strerror}")
    assert proc.stdout is not None
    output = Tail(proc.stdout.fileno(), OUTPUT_CAP)
    error: str | None = None
    timed_out = False
    try:
        timed_out = collect(proc, [output], timeout) is None
        if timed_out:
            error = f"timed out after {timeout:g} s"
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) during the rollback: stop it, say so
        error = "interrupted (process group killed)"
    finally:
        kill_group(proc)  # a no-op when collect() already did it
        proc.stdout.close()
    text = output.text()
    if output.truncated:
        text = (
            f"[output truncated: kept the last {len(output.data)} of {output.total} bytes]\n{text}"
        )
    return RollbackResult(proc.returncode, text, timed_out=timed_out, error=error)


def _hooked_argv(hooked: object) -> list[str]:
    """The argv a ``pytest_promotion_rollback_command`` hook returned: a list (or tuple)
    of arguments, or a string split into words as the config's template is (shlex)."""
    if isinstance(hooked, str):
        try:
            argv = shlex.split(hooked)
        except ValueError as exc:
            raise RenderError(f"{exc} in {hooked!r}") from None
    elif isinstance(hooked, list | tuple) and all(
        isinstance(a, str | int | os.PathLike) and not isinstance(a, bool) for a in hooked
    ):
        argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in hooked]
    else:
        shown = repr(hooked)
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        raise RenderError(
            f"expected an argv list of strings or a string, found {type(hooked).__name__} {shown}"
        )
    if not argv or not argv[0]:
        raise RenderError(f"expected a command, found {hooked!r}")
    return argv


def template_fields(template: Sequence[str] | None) -> set[str]:
    """The placeholders a rollback template uses (``{version}``...)."""
    return {m[1] for arg in template or () for m in _FIELD.finditer(arg)}


def attach_rollback(
    decision: Decision,
    *,
    hooked: object,
    template: Sequence[str] | None,
    values: Mapping[str, str | None],
    secrets: Sequence[str],
    execute: bool,
    timeout: float,
    cwd: str | None = None,
    no_target: str | None = None,
) -> Decision:
    """The decision with the rollback command (a hook's argv, else the rendered template),
    redacted; run when ``execute``. A hook's result or a template that cannot be used
    safely leaves no command and says why in the warnings; ``no_target`` (the reason
    there is nothing to roll back to: a first promotion) is said instead of a template
    that needs the previous version."""
    argv: list[str] | None = None
    warning: str | None = None
    if hooked is not None:
        try:
            argv = _hooked_argv(hooked)
        except RenderError as exc:
            warning = redact(
                f"rollback command of {decision.environment} from the "
                f"pytest_promotion_rollback_command hook cannot be used: {exc}",
                secrets,
            )
    elif template is not None:
        try:
            argv = render(template, values)
        except RenderError as exc:
            warning = no_target or (
                f"rollback command of {decision.environment} cannot be rendered: {exc}"
            )
    if argv is None:
        if warning is None:
            return decision
        return replace(decision, warnings=[*decision.warnings, warning])
    result = None
    if execute:
        ran = run_rollback(argv, timeout, cwd=cwd)
        ran.output = redact(ran.output, secrets)
        result = ran.to_json()
    return replace(
        decision,
        rollback_argv=[redact(a, secrets) for a in argv],
        rollback_command=redact(shlex.join(argv), secrets),
        rollback_result=result,
    )
