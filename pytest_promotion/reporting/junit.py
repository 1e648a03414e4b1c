"""Testsuite properties in pytest's own ``--junitxml`` file, added on the controller."""

from __future__ import annotations

import pytest

from ..decision import PASSED, Decision

__all__ = ["add_properties", "passed_gates"]


def add_properties(
    config: pytest.Config, decision: Decision, secrets: tuple[str, ...] = ()
) -> None:
    """Add ``promotion.*`` properties to the suite (no-op without ``--junitxml``), and mask
    the secrets in those a test recorded (``record_testsuite_property``)."""
    # pytest has no public handle on its LogXML; record_testsuite_property does not work
    # under xdist, so we add to the controller's LogXML as pytest-xdist users need.
    from _pytest.junitxml import xml_key

    from ..redact import redact
    from ..untrusted import one_line

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    # Called again when a late failure turns the decision: ours are replaced, not added.
    xml.global_properties = [
        (name, redact(value, secrets))
        for name, value in xml.global_properties
        if not name.startswith("promotion.")
    ]
    xml.add_global_property("promotion.environment", decision.environment)
    xml.add_global_property("promotion.decision", decision.decision)
    xml.add_global_property("promotion.rollback_command", decision.rollback_command or "")
    if decision.version:
        xml.add_global_property("promotion.version", decision.version)
    for n, reason in enumerate(decision.reasons, 1):
        xml.add_global_property(f"promotion.reason.{n}", reason)
    for n, warning in enumerate(decision.warnings, 1):
        xml.add_global_property(f"promotion.warning.{n}", warning)
    for waiver in decision.waivers:
        xml.add_global_property(f"promotion.waiver.{waiver['gate']}", waiver["reason"])
    xml.global_properties = [(one_line(n), one_line(v)) for n, v in xml.global_properties]
    # Added after one_line: JSON shows every control character escaped already.
    xml.add_global_property("promotion.passed", redact(passed_gates(decision), secrets))


def passed_gates(decision: Decision) -> str:
    """The facts of the gates that passed, as JSON: ``[{"id", "gate", "trigger",
    "measured", "threshold"}]``. Their JUnit cases carry no ``promotion.*`` properties
    unless a fact says more than the defaults (a gate name, a rollback trigger, a
    measurement): one suite property costs a 2,000-gate run about 1 % of two per case."""
    # One fragment a gate and one join: the same text as json.dumps over a dict a gate
    # with separators=(",", ":"), at about half the cost (no dict, no generic encoder).
    from json.encoder import encode_basestring_ascii as q

    return (
        "["
        + ",".join(
            f'{{"id":{(quoted := q(g.id))},"gate":{quoted if g.name == g.id else q(g.name)},'
            f'"trigger":{_ROLLBACK if g.rollback_trigger else _BLOCK},"measured":'
            f'{"null" if g.measured is None else q(g.measured)},"threshold":'
            f"{'null' if g.threshold is None else q(g.threshold)}}}"
            for g in decision.gates
            if g.outcome == PASSED and not g.xfail
        )
        + "]"
    )


_ROLLBACK, _BLOCK = '"rollback"', '"block"'
