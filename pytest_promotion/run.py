"""The values of one gate run, fixed when it starts, and the facts its roles gather.

Both roles (an xdist worker and the controller, or the one process without xdist) start
the same :class:`PromotionRun` in ``pytest_configure``; it lives in ``config.stash``
under :data:`.keys.RUN_KEY`. Everything a user can get wrong here is a usage error
(exit 4) before any gate runs.
"""

from __future__ import annotations

import os

import pytest

from .config import ConfigError, Environment, PromotionConfig, load_config
from .decision import RunFacts
from .keys import CONFIG_KEY
from .schema import VALUE_RE

__all__ = ["PromotionRun", "SelectionCounts", "check_version", "run_config"]

VERSION_VAR = "PROMOTION_VERSION"
PREVIOUS_VERSION_VAR = "PROMOTION_PREVIOUS_VERSION"


class SelectionCounts:
    """What the selection deselected (the JSON ``selection`` and the header line), and the
    gate ids that show a credential; on the controller under xdist, as its workers said."""

    __slots__ = ("deselected_other", "leaky_ids")

    def __init__(self) -> None:
        self.deselected_other = 0
        self.leaky_ids: list[str] = []


class PromotionRun:
    """One run's target environment, versions, waivers and facts. (Plain classes here:
    a dataclass compiles its methods at import, which every run pays.)"""

    def __init__(
        self,
        config: pytest.Config,
        promotion: PromotionConfig,
        environment: Environment,
        env_source: str,
        version: str | None,
        waivers: dict[str, str],
        facts: RunFacts,
    ) -> None:
        self.config = config
        self.promotion = promotion
        self.environment = environment
        self.env_source = env_source
        self.version = version
        self.waivers = waivers
        self.facts = facts
        self.counts = SelectionCounts()
        # The version a rollback goes back to: set by the collector at start (controller).
        self.previous_version: str | None = None
        # The gates the selection gave a ``probe`` marker's Prefetch (the probes to start
        # early): only these are looked at for one, not every item.
        self.probe_gates: list[pytest.Item] = []

    @classmethod
    def start(cls, config: pytest.Config, env: str, env_source: str) -> PromotionRun:
        promotion = run_config(config)
        name = promotion.chain_name(env) or env
        if name not in promotion.chain:
            raise pytest.UsageError(
                f"{env_source} {env}: unknown environment (known: {', '.join(promotion.chain)}; "
                f"from {promotion.label})"
            )
        try:
            environment = promotion.environment(name)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        waivers = dict(config.getoption("promotion_waivers") or [])
        if waivers and not environment.allow_waivers:
            raise pytest.UsageError(
                f"--waive {next(iter(waivers))}: {name} forbids waivers "
                f"(set allow_waivers = true in [environments.{name}] to permit them)"
            )
        version = check_version(
            config.getoption("promotion_version"), "--promotion-version", VERSION_VAR
        )
        facts = RunFacts(
            environment=environment.name, allow_skips=environment.allow_skips, waivers=waivers
        )
        # --hosts exists when pytest-testinfra is installed; an explicit --hosts wins.
        if environment.hosts and "hosts" in vars(config.option) and not config.option.hosts:
            # pytest-testinfra parametrizes its `host` fixture from --hosts: one test per host.
            config.option.hosts = ",".join(environment.hosts)
        return cls(config, promotion, environment, env_source, version, waivers, facts)

    def selection_line(self, selected: int) -> str:
        """The header line about what the selection kept and left out."""
        gates = "gate" if selected == 1 else "gates"
        line = f"promotion: {selected} {gates} selected for {self.environment.name}"
        if self.counts.deselected_other:
            line += f", {self.counts.deselected_other} deselected (other environments)"
        if self.facts.unmarked:
            line += f", {self.facts.unmarked} deselected (no environment marker: not a gate)"
        return line


def run_config(config: pytest.Config) -> PromotionConfig:
    """The run's config file, read once (cached in ``config.stash``): found from pytest's
    rootdir, then the invocation directory and its parents; a mistake is a usage error."""
    promotion = config.stash.get(CONFIG_KEY, None)
    if promotion is None:
        try:
            promotion = load_config(
                config.rootpath,
                config.getoption("promotion_config"),
                config.invocation_params.dir,
            )
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[CONFIG_KEY] = promotion
    return promotion


def check_version(option_value: str | None, option: str, variable: str) -> str | None:
    """A version from ``option`` (else the environment ``variable``), refused at start
    unless it is a plain name or version: it goes into the rollback command."""
    value, source = option_value, option
    if not value:
        value, source = os.environ.get(variable) or None, variable
    if value is not None and not VALUE_RE.match(value):
        raise pytest.UsageError(
            f"{source} {value!r}: not a plain version (expected letters, digits, '.', '_', "
            "'+' or '-', starting with a letter or digit, at most 128)"
        )
    return value
