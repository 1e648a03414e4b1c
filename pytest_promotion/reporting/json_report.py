"""The JSON decision file, always replaced atomically."""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _q
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import replace_file

if TYPE_CHECKING:
    from ..decision import Decision, GateRecord

__all__ = ["placeholder", "report_text", "write_atomic"]

SCHEMA = 1


def report_text(decision: Decision, extra: Mapping[str, Any]) -> str:
    """The report of ``decision`` with the keys of ``extra`` after its own, as JSON:
    indented for a person when small; compact when large, and then the gates are encoded
    one fragment each (the same text as ``json.dumps`` of ``Decision.to_json()``, without
    a dict a gate and the generic encoder: most of what the report cost a large run)."""
    if len(decision.gates) <= 200:
        return json.dumps({"schema": SCHEMA, **decision.to_json(), **extra}, indent=2)
    data = decision.to_json(gates=False)
    head = json.dumps({"schema": SCHEMA, **{k: data.pop(k) for k in _HEAD}})
    tail = json.dumps({**data, **extra})
    gates = ", ".join(map(_gate, decision.gates))
    return f'{head[:-1]}, "gates": [{gates}], {tail[1:]}'


_HEAD = ("decision", "environment", "version", "rollback_command", "reasons")


def _gate(g: GateRecord) -> str:
    """One gate as ``json.dumps(g.to_json())`` writes it (no call but the encoder's for a
    value: this runs once a gate)."""
    gate_id, name, measured, threshold, waiver = g.id, g.name, g.measured, g.threshold, g.waiver
    quoted_id = _q(gate_id)
    text = (
        f'{{"id": {quoted_id}, "name": {quoted_id if name == gate_id else _q(name)}, '
        f'"outcome": {_q(g.outcome)}, '
        f'"measured": {"null" if measured is None else _q(measured)}, '
        f'"threshold": {"null" if threshold is None else _q(threshold)}, '
        f'"message": {_q(g.message)}, "rollback_trigger": {"true" if g.rollback_trigger else "false"}, '
        f'"waiver": {"null" if waiver is None else _q(waiver)}, "duration": {round(g.duration, 6)!r}'
    )  # repr: as json.dumps writes a float (a duration is finite)
    if g.targets is not None:
        return f'{text}, "targets": {json.dumps(g.targets)}}}'
    return text + "}"


def write_atomic(path: Path, data: dict[str, Any] | str) -> None:
    """Write ``data`` (or the JSON text :func:`report_text` made) so that readers see the
    old file or the new one, never half of one."""
    # json.dumps, not json.dump: only dumps uses the C encoder (dump encodes in Python
    # and writes every token: ~25 us a gate).
    text = data if isinstance(data, str) else json.dumps({"schema": SCHEMA, **data}, indent=2)
    # Only a regular file is replaced (never /dev/null or a FIFO), and a missing
    # directory is an error, never created: both are checked at start, and again here.
    if path.exists() and not path.is_file():
        raise OSError(errno.EEXIST, "not a regular file")
    # mkstemp makes the file 0600: a CI step uploading it as another user could not read
    # it. The report holds no secret (masked): readable like any build output, or as the
    # file it replaces was.
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o644
    replace_file(path, text + "\n", mode=mode)


def placeholder(environment: str | None, version: str | None) -> dict[str, Any]:
    """What the report says while the run is going: a run killed now must not promote."""
    return {
        "decision": "block",
        "environment": environment,
        "version": version,
        "rollback_command": None,
        "reasons": ["the gate run did not finish (killed or still running)"],
        "gates": [],
        "waivers": [],
    }
