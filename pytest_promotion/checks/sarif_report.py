"""SARIF 2.1 reports (CodeQL, Semgrep, Trivy, bandit's SARIF output...) read into security
findings, every value type-checked on the way: a malformed file fails the check in one line
naming the JSON path, never a traceback, never a pass."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import CheckFailed
from .findings import Finding
from .findings import load_json as _load_json
from .findings import norm_path as _norm

__all__ = ["sarif_findings", "sarif_severity"]


def sarif_severity(result: Mapping[str, Any], rule: Mapping[str, Any] | None) -> str:
    """GitHub code scanning's mapping: security-severity score, else the level. A score
    that is not a number is a ValueError: falling back to the level could rate a critical
    finding medium."""
    for props in (result.get("properties"), (rule or {}).get("properties")):
        if isinstance(props, dict) and "security-severity" in props:
            value = props["security-severity"]
            try:
                score = float(value)
            except (TypeError, ValueError):
                score = float("nan")
            if score != score or isinstance(value, bool):  # NaN, "critical", true
                raise ValueError(f"security-severity is {_what(value)}, expected a score 0-10")
            return (
                "critical"
                if score >= 9.0
                else "high"
                if score >= 7.0
                else "medium"
                if score >= 4.0
                else "low"
            )
    level = result.get("level")
    if level is None and rule and isinstance(rule.get("defaultConfiguration"), dict):
        level = rule["defaultConfiguration"].get("level")
    return {"error": "high", "warning": "medium", "note": "low", "none": "low"}.get(
        str(level or "warning"), "medium"
    )


class _Malformed(Exception):
    """A SARIF value of the wrong JSON type: where it is and what it is."""


_JSON: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}


def _typed(value: Any, kind: type, at: str) -> Any:
    """``value`` when it is a ``kind``, an empty ``kind`` when absent (null), else malformed."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise _Malformed(f"{at} is {_what(value)}, expected {_JSON[kind]}")
    return value


def _objects(value: Any, at: str) -> list[tuple[str, dict[str, Any]]]:
    """An optional array whose items must all be objects: (JSON path, item) pairs."""
    items = []
    for n, item in enumerate(_typed(value, list, at)):
        if not isinstance(item, dict):
            raise _Malformed(f"{at}[{n}] is {_what(item)}, expected an object")
        items.append((f"{at}[{n}]", item))
    return items


def _what(value: Any) -> str:
    return _JSON.get(type(value)) or json.dumps(value)  # null, true, 5


def sarif_findings(path: Path, rootdir: Path) -> tuple[list[Finding], str]:
    data = _load_json(path, "SARIF file")
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith("2.1"):
        found = data.get("version") if isinstance(data, dict) else type(data).__name__
        raise CheckFailed(f"SARIF file {path}: expected version 2.1.0, found {found!r}")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise CheckFailed(f"SARIF file {path} has no runs: the scanner produced no results")
    findings: list[Finding] = []
    tools: list[str] = []
    try:
        for at, run_ in _objects(runs, "runs"):
            tools.append(_run_findings(path, rootdir, at, run_, len(tools) + 1, findings))
    except _Malformed as exc:
        raise CheckFailed(f"SARIF file {path}: malformed: {exc}") from None
    return findings, f"{'+'.join(tools)}, {path.name}"


def _run_findings(
    path: Path, rootdir: Path, at: str, run_: dict[str, Any], n: int, findings: list[Finding]
) -> str:
    """Add one run's findings to ``findings``: the name of its tool."""
    tool = _typed(run_.get("tool"), dict, f"{at}.tool")
    driver = _typed(tool.get("driver"), dict, f"{at}.tool.driver")
    name = str(driver.get("name") or f"run {n}")
    if not isinstance(run_.get("results"), list):
        raise CheckFailed(f"SARIF file {path}: {name} has no 'results' (the scan did not complete)")
    for inv_at, inv in _objects(run_.get("invocations"), f"{at}.invocations"):
        success = inv.get("executionSuccessful")
        if success is not None and not isinstance(success, bool):  # "false" is not false
            raise _Malformed(
                f"{inv_at}.executionSuccessful is {_what(success)}, expected a boolean"
            )
        if success is False:
            notes = _objects(
                inv.get("toolExecutionNotifications"), f"{inv_at}.toolExecutionNotifications"
            )
            errors = [(a, m) for a, m in notes if m.get("level") == "error"]
            why = ""
            if errors:
                message = _typed(errors[0][1].get("message"), dict, f"{errors[0][0]}.message")
                why = str(message.get("text", ""))
            raise CheckFailed(
                f"SARIF file {path}: {name} reports a failed run: {why or 'no reason given'}"
            )
    rules = _rules(tool, at)
    for res_at, result in _objects(run_["results"], f"{at}.results"):
        if result.get("kind") in ("pass", "notApplicable"):
            continue
        if result.get("baselineState") == "absent":
            continue  # fixed since the tool's baseline: not in the code any more
        _typed(result.get("properties"), dict, f"{res_at}.properties")
        rule_id, rule = _rule_of(result, rules, res_at)
        file, line = _location(result, res_at)
        message = _typed(result.get("message"), dict, f"{res_at}.message")
        findings.append(
            Finding(
                rule=rule_id,
                file=_norm(file, rootdir) if file else "?",
                line=line,
                severity=_severity(result, rule, res_at),
                text=str(message.get("text", ""))[:200],
            )
        )
    return name


def _rules(tool: dict[str, Any], at: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The driver's rules (what ``ruleIndex`` indexes) and every rule of the run."""
    components = [(f"{at}.tool.driver", tool.get("driver"))]
    components += _objects(tool.get("extensions"), f"{at}.tool.extensions")
    every: list[list[dict[str, Any]]] = []
    for comp_at, component in components:
        rules = _objects(_typed(component, dict, comp_at).get("rules"), f"{comp_at}.rules")
        for rule_at, rule in rules:
            _typed(rule.get("properties"), dict, f"{rule_at}.properties")
            _typed(rule.get("defaultConfiguration"), dict, f"{rule_at}.defaultConfiguration")
        every.append([rule for _, rule in rules])
    return every[0], [rule for rules in every for rule in rules]


def _rule_of(
    result: Mapping[str, Any], rules: tuple[list[dict[str, Any]], list[dict[str, Any]]], at: str
) -> tuple[str, dict[str, Any] | None]:
    driver, every = rules
    ref = _typed(result.get("rule"), dict, f"{at}.rule")
    rule_id = result.get("ruleId") or ref.get("id")
    index = result.get("ruleIndex", ref.get("index"))
    if isinstance(index, int) and 0 <= index < len(driver) and "toolComponent" not in ref:
        return str(rule_id or driver[index].get("id", "?")), driver[index]
    for rule in every:
        if rule_id and rule.get("id") == rule_id:
            return str(rule_id), rule
    return str(rule_id or "?"), None


def _location(result: Mapping[str, Any], at: str) -> tuple[str | None, int | None]:
    for loc_at, loc in _objects(result.get("locations"), f"{at}.locations"):
        phys = _typed(loc.get("physicalLocation"), dict, f"{loc_at}.physicalLocation")
        artifact = _typed(
            phys.get("artifactLocation"), dict, f"{loc_at}.physicalLocation.artifactLocation"
        )
        region = _typed(phys.get("region"), dict, f"{loc_at}.physicalLocation.region")
        uri = _typed(artifact.get("uri"), str, f"{loc_at}.physicalLocation.artifactLocation.uri")
        line = region.get("startLine")
        if uri:
            return uri, line if isinstance(line, int) else None
    return None, None


def _severity(result: Mapping[str, Any], rule: Mapping[str, Any] | None, at: str) -> str:
    try:
        return sarif_severity(result, rule)
    except ValueError as exc:
        raise _Malformed(f"{at}: {exc}") from None
