"""The watch's measurement run of the Python gates, inside the child pytest.

Loaded only there, with ``-p pytest_promotion.watch.child`` (see :mod:`.pygates`): it adds
the hidden ``--promotion-watch-gates=FILE`` option, keeps only the target's gates whose
closest ``gate`` marker says ``watch=True`` (after the plugin's own selection, so the
other environments' gates and the declarative checks are gone already) and writes their
node ids and names, masked, to FILE. The run is otherwise an ordinary gate run: its JSON
report is the measurement's evidence. No ordinary pytest run ever loads this module.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

__all__ = ["OPTION", "watched"]

OPTION = "--promotion-watch-gates"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("promotion").addoption(
        OPTION, dest="promotion_watch_gates", metavar="FILE", help=argparse.SUPPRESS
    )


def watched(item: pytest.Item) -> bool:
    """Whether the test's closest gate marker asks for the watch (``watch=True``)."""
    mark = item.get_closest_marker("gate")
    return mark is not None and mark.kwargs.get("watch") is True


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    path = config.getoption("promotion_watch_gates", None)
    if not path:
        return
    keep = [item for item in items if watched(item)]
    drop = [item for item in items if not watched(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    from ..keys import RUN_KEY
    from ..redact import redact

    run: Any = config.stash.get(RUN_KEY, None)
    secrets = tuple(run.environment.secrets) if run is not None else ()
    found = []
    for item in keep:
        mark = item.get_closest_marker("gate")
        name = str((mark.kwargs.get("name") if mark else None) or item.nodeid)
        found.append({"id": redact(item.nodeid, secrets), "name": redact(name, secrets),
                      "path": str(item.path)})  # fmt: skip
    report: object = found
    if session.testsfailed:  # a file that did not collect may hold a watched gate
        report = {"error": f"{session.testsfailed} collection error(s)"}
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(report, out)
