from __future__ import annotations

from . import Subparsers


def register(sub: Subparsers) -> None:
    pass
