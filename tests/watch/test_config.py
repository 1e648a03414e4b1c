"""The watch's and the relative criteria's config: the recipe in promotion.toml loads, and
every mistake is one line naming the file, table and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_promotion.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def recipe() -> str:
    text = (ROOT / "promotion.toml").read_text()
    block = text.split("# --- after the deploy:", 1)[1].split("# [environments.prod]", 1)[1]
    return "[environments.prod]\n" + "\n".join(line[2:] for line in block.splitlines())


def test_the_p95_recipe_in_promotion_toml_is_a_valid_config(tmp_path: Path) -> None:
    (tmp_path / "promotion.toml").write_text(recipe())
    config = load_config(tmp_path)
    check = config.tables["prod"]["checks"][0]
    assert check["max_increase"] == "50%" and check["on_missing_baseline"] == "pass"
    assert config.tables["prod"]["watch"]["failure_limit"] == 1


BASE = """
[[environments.prod.checks]]
name = "p95"
prometheus = "http://127.0.0.1:9090"
query = "up"
"""


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ('max = 1\nmax_increase = "10%"',
         "key 'on_missing_baseline': expected \"pass\" or \"fail\" beside a relative criterion, "
         "found nothing"),
        ('max = 1\nmax_increase = "10"\non_missing_baseline = "pass"',
         "key 'max_increase': expected a percentage like \"10%\", found '10'"),
        ('max = 1\nmin_delta = 0.1', "key 'min_delta': expected with max_increase or max_decrease, found it alone"),
        ('max = 1\nmax_decrease = "5%"\non_missing_baseline = "record"',
         "key 'on_missing_baseline': expected \"pass\" or \"fail\" beside a relative "
         "criterion, found 'record'"),
        ('max = 1\nmax_increase = "5%"\non_missing_baseline = "fail"\nbaseline_runs = 0',
         "key 'baseline_runs': expected 1 to 50, found 0"),
    ],
)  # fmt: skip
def test_relative_mistakes_are_one_line(tmp_path: Path, keys: str, error: str) -> None:
    (tmp_path / "promotion.toml").write_text(BASE + keys + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"promotion.toml: [[environments.prod.checks]] 'p95': {error}"


def test_a_relative_limit_needs_an_absolute_bound(tmp_path: Path) -> None:
    (tmp_path / "promotion.toml").write_text(
        '[[environments.prod.checks]]\nname = "api"\nhttp = "https://localhost/health"\n'
        'max_increase = "10%"\non_missing_baseline = "pass"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        "promotion.toml: [[environments.prod.checks]] 'api': key 'max_increase': expected "
        "beside an absolute bound (max_latency_ms), found none: a relative limit alone lets "
        "releases drift"
    )


def test_a_kind_without_a_numeric_value_takes_no_relative_key(tmp_path: Path) -> None:
    (tmp_path / "promotion.toml").write_text(
        '[[environments.prod.checks]]\nname = "port"\ntcp = "127.0.0.1:1"\nmax_increase = "5%"\n'
    )
    with pytest.raises(ConfigError, match="unknown key 'max_increase' for a tcp check"):
        load_config(tmp_path)


def test_watch_table_mistakes_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "promotion.toml").write_text('[environments.prod]\nwatch = { every = "1m" }\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        "promotion.toml: [environments.prod.watch]: unknown key 'every' (known keys: "
        "consecutive_error_limit, duration, failure_limit, gate_timeout, initial_delay, "
        "interval, python_gates)"
    )
    (tmp_path / "promotion.toml").write_text(
        '[environments.prod]\nwatch = { duration = "1m", interval = "5m" }\n'
    )
    with pytest.raises(
        ConfigError, match=r"key 'interval': expected at most the duration \(60 s\)"
    ):
        load_config(tmp_path)
    for table, expected in (
        ('{ gate_timeout = "2h" }', "key 'gate_timeout': expected between 0.01 s and 1h, "
                                    "found '2h'"),
        ('{ python_gates = "no" }', "key 'python_gates': expected true or false, found 'no'"),
    ):  # fmt: skip
        (tmp_path / "promotion.toml").write_text(f"[environments.prod]\nwatch = {table}\n")
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path)
        assert str(info.value) == f"promotion.toml: [environments.prod.watch] {expected}"
