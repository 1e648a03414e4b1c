"""``promotion init``: look at a repository, then write promotion.toml, a gates/ starter
suite, Makefile targets and a CI recipe that fit it (detect.py finds, render.py writes the
text, the CI recipes are the files of templates/, the same as docs/ci/)."""

from __future__ import annotations

from .detect import Layout, detect
from .render import CI_FILES, Planned, plan_files

__all__ = ["CI_FILES", "Layout", "Planned", "detect", "plan_files"]
