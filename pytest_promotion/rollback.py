"""The rollback command: a template rendered to argv (never a shell) and, on request, run
with a deadline, its output capped and redacted."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .redact import redact

if TYPE_CHECKING:
    from .decision import Decision

__all__ = ["VALUE_RE", "RenderError", "render", "run_rollback"]

# Values put into the command come from the command line and the environment:
# they must look like names and versions, never like options or shell syntax.
VALUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
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
    """Run the rollback command; a deadline kills its whole process group."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        return RollbackResult(None, "", error=f"cannot run {argv[0]}: {exc.strerror}")
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        timed_out = True
    text = out[-OUTPUT_CAP:].decode("utf-8", "replace")
    return RollbackResult(
        proc.returncode,
        text,
        timed_out=timed_out,
        error=f"timed out after {timeout:g} s" if timed_out else None,
    )


def attach_rollback(
    decision: Decision,
    *,
    hooked: Sequence[str] | None,
    template: Sequence[str] | None,
    values: Mapping[str, str | None],
    secrets: Sequence[str],
    execute: bool,
    timeout: float,
    cwd: str | None = None,
) -> None:
    """Put the rollback command (a hook's argv, else the rendered template) into the
    decision, redacted; run it when ``execute``. A template that cannot be rendered
    safely leaves no command and says why in the decision's warnings."""
    argv: list[str] | None = [str(a) for a in hooked] if hooked is not None else None
    if argv is None and template is not None:
        try:
            argv = render(template, values)
        except RenderError as exc:
            decision.warnings.append(
                f"rollback command of {decision.environment} cannot be rendered: {exc}"
            )
    if argv is None:
        return
    decision.rollback_argv = [redact(a, secrets) for a in argv]
    decision.rollback_command = redact(shlex.join(argv), secrets)
    if execute:
        result = run_rollback(argv, timeout, cwd=cwd)
        result.output = redact(result.output, secrets)
        decision.rollback_result = result.to_json()
