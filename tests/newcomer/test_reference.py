"""docs/config-reference.md is generated from the validator's schema: it must match."""

from __future__ import annotations

from pathlib import Path

from pytest_promotion.checks import KINDS, kind_module
from pytest_promotion.reference import render
from pytest_promotion.schema import CHECK_COMMON, ENV_KEYS, PROMOTION_KEYS, SHARED_KEYS

DOC = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"


def test_config_reference_is_the_generated_one() -> None:
    assert DOC.read_text() == render(), (
        "docs/config-reference.md differs from the schema: run `make config-reference`"
    )


def test_every_schema_key_is_listed() -> None:
    text = render()
    keys = {*PROMOTION_KEYS, *ENV_KEYS, *CHECK_COMMON, *SHARED_KEYS}
    for kind in KINDS:
        keys |= set(kind_module(kind).KEYS)
    missing = sorted(k for k in keys if f"| `{k}` |" not in text)
    assert missing == []
