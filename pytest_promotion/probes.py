"""Run any check kind from a Python gate: ``probe.check("http", "/health", expect_status=200)``.

Knows nothing of pytest: failures raise AssertionError with the check's one-line message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .check_spec import CheckSpec
from .checks import registry
from .checks.base import CheckConfigError, CheckFailed, Outcome, Target
from .checks.runner import run_check
from .schema import CHECK_COMMON

if TYPE_CHECKING:
    from .checks.tls import CertificateInfo
    from .config import Environment

__all__ = ["Probe"]


class Probe:
    """Check kinds bound to the target environment.

    Example::

        @pytest.mark.staging
        def test_agent(probe):
            probe.wait_until_healthy("http", "/health", timeout=60, interval=2)
            probe.check("redis", probe.env.services["redis"], expect_role="master")
            assert probe.prometheus("sum(up{job='agent'})") >= 2
    """

    def __init__(
        self,
        environment: Environment,
        record: Callable[[str, Outcome], None] | None = None,
        prefetched: Mapping[str, tuple[str, Callable[[], Outcome]]] | None = None,
    ) -> None:
        self.env = environment
        self.target: Target = environment.target()
        self._record = record
        self._prefetched = dict(prefetched or {})

    def result(self, name: str) -> Outcome:
        """The outcome of a ``@pytest.mark.probe(..., name=name)`` probe started early
        (or run now, where nothing was started); a failure raises AssertionError."""
        __tracebackhide__ = True
        if name not in self._prefetched:
            known = ", ".join(sorted(self._prefetched)) or "none"
            raise AssertionError(
                f"probe.result({name!r}): no @pytest.mark.probe named so (known: {known})"
            )
        kind, outcome = self._prefetched[name]
        try:
            result = outcome()
        except CheckConfigError as exc:  # the mark's kind or keys: a failure, like the rest
            raise AssertionError(f"@pytest.mark.probe {name!r}: {exc}") from None
        return self._settle(kind, result)

    def _check(self, kind: str, value: Any, keys: dict[str, Any]) -> CheckSpec:
        """The probe as a check spec, validated like a declarative one."""
        if kind not in registry:
            raise CheckConfigError(
                f"probe: unknown check kind {kind!r} (known: {', '.join(registry.names())})"
            )
        spec = {kind: value, **keys}
        module = registry.get(kind)
        unknown = sorted(set(keys) - set(module.KEYS) - set(CHECK_COMMON))
        if unknown:
            raise CheckConfigError(
                f"probe {kind}: unknown key {unknown[0]!r} (known: {', '.join(sorted(module.KEYS))})"
            )
        module.validate(spec, f"probe {kind}")
        return CheckSpec(
            name=kind,
            kind=kind,
            env=self.env.name,
            spec=spec,
            where=f"probe {kind}",
            trigger=keys.get("trigger"),
        )

    def run(self, kind: str, value: Any, **keys: Any) -> Outcome:
        """Run one check once and return its Outcome (never raises for a failing target)."""
        return run_check(self._check(kind, value, keys), self.target)

    def check(self, kind: str, value: Any, **keys: Any) -> Outcome:
        """Run one check; a failure raises AssertionError with its one-line message."""
        __tracebackhide__ = True
        return self._settle(kind, self.run(kind, value, **keys))

    def wait_until_healthy(
        self,
        kind: str,
        value: Any,
        *,
        timeout: float = 60.0,
        interval: float = 2.0,
        retries: int | None = None,
        start_period: float = 0.0,
        consecutive_successes: int = 1,
        backoff: float = 1.5,
        on_attempt: Callable[[int, Outcome], None] | None = None,
        **keys: Any,
    ) -> Outcome:
        """Poll a check with backoff until it passes (``consecutive_successes`` times in a
        row) or the deadline passes; raises AssertionError with the last failure. The same
        as a declarative check's ``wait`` table."""
        __tracebackhide__ = True
        wait: dict[str, Any] = {
            "timeout": timeout,
            "interval": interval,
            "start_period": start_period,
            "backoff": backoff,
        }
        if retries is not None:
            wait["retries"] = retries
        keys = {**keys, "wait": wait, "consecutive_successes": consecutive_successes}
        return self._settle(
            kind, run_check(self._check(kind, value, keys), self.target, on_attempt)
        )

    def _settle(self, kind: str, outcome: Outcome) -> Outcome:
        __tracebackhide__ = True
        if self._record is not None:
            self._record(kind, outcome)
        if not outcome.passed:
            raise AssertionError(f"{kind}: {outcome.message}")
        return outcome

    def certificate(self, hostport: str, server_name: str | None = None) -> CertificateInfo:
        """The peer certificate of ``host:port``, verified against the environment's CA."""
        __tracebackhide__ = True
        from .checks.tcp import split_hostport
        from .checks.tls import inspect_certificate

        host, port = split_hostport(hostport)
        try:
            return inspect_certificate(host, port, self.target, server_name)
        except CheckFailed as exc:
            raise AssertionError(f"tls: {exc.message}") from None

    def prometheus(self, query: str, url: str | None = None) -> float:
        """The single value of an instant query against the environment's Prometheus.
        No data (empty result, NaN, an error) raises AssertionError: never a pass."""
        __tracebackhide__ = True
        from .checks.prometheus import query_value

        base = url or self.env.services.get("prometheus")
        if not base:
            raise AssertionError(
                f"prometheus: no URL given and no 'prometheus' set in [environments.{self.env.name}]"
            )
        try:
            return query_value(base, query, self.target)
        except CheckFailed as exc:
            raise AssertionError(f"prometheus: {exc.message}") from None
