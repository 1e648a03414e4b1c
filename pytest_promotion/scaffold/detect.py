"""What a repository holds: a Python package and its tests, a Go module, a Dockerfile,
CI files, a Makefile."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Layout", "detect"]

_NOT_PACKAGES = {"tests", "test", "gates", "docs", "build", "dist", "bench", "examples"}


@dataclass(frozen=True)
class Layout:
    root: Path
    python_package: str | None = None  # the package directory, relative to root
    python_tests: str | None = None
    go_module: str | None = None
    dockerfile: bool = False
    ci: tuple[str, ...] = ()  # what CI the repository already has: github, gitlab, jenkins
    makefile: bool = False
    notes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        found = []
        if self.python_package:
            tests = f", tests in {self.python_tests}/" if self.python_tests else ", no tests/"
            found.append(f"Python package {self.python_package}/{tests}")
        if self.go_module:
            found.append(f"Go module {self.go_module}")
        if self.dockerfile:
            found.append("Dockerfile")
        found += [f"CI: {name}" for name in self.ci]
        if self.makefile:
            found.append("Makefile")
        return found or ["nothing to build or test: health checks only"]


def _python_package(root: Path) -> str | None:
    if not any((root / f).is_file() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
        return None
    for base in (root / "src", root):
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if (
                child.is_dir()
                and child.name not in _NOT_PACKAGES
                and not child.name.startswith(".")
                and (child / "__init__.py").is_file()
            ):
                return str(child.relative_to(root))
    return None


def _go_module(root: Path) -> str | None:
    path = root / "go.mod"
    if not path.is_file():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("module "):
            return line.split(None, 1)[1].strip()
    return "(unnamed)"


def _ci(root: Path) -> tuple[str, ...]:
    found = []
    workflows = root / ".github" / "workflows"
    if workflows.is_dir() and any(workflows.glob("*.y*ml")):
        found.append("github")
    if (root / ".gitlab-ci.yml").is_file():
        found.append("gitlab")
    if (root / "Jenkinsfile").is_file():
        found.append("jenkins")
    return tuple(found)


def detect(root: Path) -> Layout:
    package = _python_package(root)
    tests = next((d for d in ("tests", "test") if (root / d).is_dir()), None)
    notes = []
    if package and (root / "pyproject.toml").is_file():
        try:
            tomllib.loads((root / "pyproject.toml").read_text())
        except tomllib.TOMLDecodeError as exc:
            notes.append(f"pyproject.toml does not parse ({exc}): its settings were not read")
    return Layout(
        root=root,
        python_package=package,
        python_tests=tests if package else None,
        go_module=_go_module(root),
        dockerfile=(root / "Dockerfile").is_file(),
        ci=_ci(root),
        makefile=(root / "Makefile").is_file(),
        notes=notes,
    )
