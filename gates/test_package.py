"""Dev gates on the package itself: what an installer and pytest will see."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

import pytest_promotion

pytestmark = pytest.mark.dev
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.gate(name="version")
def test_version_is_one_number(gate) -> None:
    """pyproject.toml, the installed metadata and __version__ agree."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    installed = importlib.metadata.version("pytest-promotion")
    gate.measure(pytest_promotion.__version__, threshold=f"== {declared}")
    assert declared == installed == pytest_promotion.__version__


@pytest.mark.gate(name="entry-point")
def test_pytest_finds_the_plugin_as_promotion() -> None:
    """One pytest11 entry point named `promotion`, so `-p no:promotion` switches it off."""
    points = [
        ep
        for ep in importlib.metadata.entry_points(group="pytest11")
        if ep.value.startswith("pytest_promotion")
    ]
    assert [(ep.name, ep.value) for ep in points] == [("promotion", "pytest_promotion.plugin")]


@pytest.mark.gate(name="typed")
def test_package_is_typed() -> None:
    assert (Path(pytest_promotion.__file__).parent / "py.typed").is_file()
