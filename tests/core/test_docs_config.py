"""Every config block in the README and docs/ validates as printed (issue 11 item 26)."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from pytest_promotion.checks import registry
from pytest_promotion.config import load_config
from tests.core.test_kinds import ACME_KIND

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.S | re.M)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
# Files a config names: made empty, as a project would have them.
_FILE_KEYS = re.compile(r"^(?:ca_bundle|report|path|junit|sarif)\s*=\s*\"([^\"]+)\"", re.M)


def blocks() -> list[tuple[str, str]]:
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = doc.read_text()
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{doc.relative_to(ROOT)}:{line}", match.group(1)))
    return found


@pytest.mark.parametrize(("where", "toml"), blocks(), ids=[w for w, _ in blocks()])
def test_config_block_validates_as_printed(
    where: str,
    toml: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if "[tool.promotion" in toml:
        (tmp_path / "pyproject.toml").write_text(toml)
    else:
        (tmp_path / "promotion.toml").write_text(toml)
    for name in _VAR.findall(toml):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    for file in _FILE_KEYS.findall(toml):
        if "{" not in file and "$" not in file:
            (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / file).touch()
    monkeypatch.chdir(tmp_path)
    if where.startswith("docs/extending.md"):  # its example kind, as its package adds it
        example = types.ModuleType("acme_kinds_status")
        exec(ACME_KIND, example.__dict__)  # noqa: S102 - the test's own source text
        request.addfinalizer(registry.add("status", example, source="docs/extending.md"))
    config = load_config(tmp_path, invocation_dir=tmp_path)
    assert config.path is not None, where
    for name in config.chain:
        config.environment(name)
