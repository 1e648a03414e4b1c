"""The ``bandit`` and ``sarif`` check kinds: security findings stay under their limits.

- ``bandit = ["src"]``: run bandit on these paths (``python -m bandit -f json -r``, with
  ``--ignore-nosec`` and without the project's ``.bandit`` file, so nothing is hidden), or
  read a report a CI step wrote: ``report = "bandit.json"``. ``exclude`` adds ``-x`` paths.
- ``sarif = "results.sarif"``: any SARIF 2.1 file (gosec, semgrep, trivy, CodeQL, ...).

Severity: SARIF uses the ``security-severity`` score of the result or its rule as GitHub
code scanning does (>= 9.0 critical, >= 7.0 high, >= 4.0 medium, else low), else the
result's ``level`` (error -> high, warning -> medium, note/none -> low). Bandit has no
critical: HIGH severity with HIGH confidence is high, other HIGH and MEDIUM are medium,
LOW is low. Limits: ``max_critical`` (default 0), ``max_high`` (default 5), ``max_medium``.
A critical count over ``max_critical`` sets ``rollback``; other failures only block.

Suppressed findings still count: bandit's ``# nosec`` (a report with nosec'd findings it
does not list fails, asking for ``--ignore-nosec``), SARIF ``suppressions`` and a SARIF
``baselineState`` of ``unchanged``/``updated`` (the tool's own baseline records no reason).
Results with ``baselineState = "absent"`` are gone and never count. The only way to
accept a finding is our baseline file, ``baseline = "security-baseline.json"``: a JSON
list of ``{"rule", "file", "line"?, "reason"}``, the reason mandatory.

Fail closed: bandit missing or crashed, files it could not parse, 0 lines scanned, a
SARIF file that is not SARIF 2.1, has no runs, a run without ``results`` or reporting a
failed execution: each fails with the reason, never "0 findings".
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..redact import redact
from .base import CheckConfigError, CheckFailed, Outcome, Target

__all__ = [
    "KEYS",
    "ROLLBACK",
    "Finding",
    "bandit_findings",
    "evaluate",
    "run",
    "sarif_findings",
    "sarif_severity",
    "validate",
]

KEYS: dict[str, type | tuple[type, ...]] = {
    "bandit": (list, str),
    "sarif": str,
    "report": str,
    "exclude": list,
    "baseline": str,
    "max_critical": int,
    "max_high": int,
    "max_medium": int,
}
ROLLBACK = False
DEFAULT_TIMEOUT = 600.0
MAX_REPORT = 256 * 1024 * 1024
LEVELS = ("critical", "high", "medium", "low")
_RANK = {name: i for i, name in enumerate(LEVELS)}


@dataclass(frozen=True)
class Finding:
    rule: str
    file: str
    line: int | None
    severity: str  # one of LEVELS
    text: str = ""

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def validate(spec: Mapping[str, Any], where: str) -> None:
    if "bandit" in spec:
        paths = spec["bandit"]
        paths = [paths] if isinstance(paths, str) else paths
        if not paths or not all(isinstance(p, str) and p for p in paths):
            raise CheckConfigError(
                f"{where}: key 'bandit': expected a list of paths to scan, found {spec['bandit']!r}"
            )
    else:
        for key in ("report", "exclude"):
            if key in spec:
                raise CheckConfigError(
                    f"{where}: key {key!r}: only for a bandit check, found {spec[key]!r}"
                )
        if not isinstance(spec.get("sarif"), str) or not spec["sarif"]:
            raise CheckConfigError(
                f"{where}: key 'sarif': expected the path of a SARIF file, found {spec.get('sarif')!r}"
            )
    if not all(isinstance(p, str) and p for p in spec.get("exclude", [])):
        raise CheckConfigError(
            f"{where}: key 'exclude': expected a list of paths, found {spec['exclude']!r}"
        )
    for key in ("bandit", "exclude"):
        values = [spec[key]] if isinstance(spec.get(key), str) else spec.get(key, [])
        for value in values:
            if value.startswith("-"):
                raise CheckConfigError(
                    f"{where}: key {key!r}: expected a path, found the option {value!r} "
                    f"(write './{value}' for a path that starts with '-')"
                )
    for key in ("max_critical", "max_high", "max_medium"):
        if key in spec and spec[key] < 0:
            raise CheckConfigError(f"{where}: key {key!r}: expected >= 0, found {spec[key]!r}")


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    limits = {"high": int(spec.get("max_high", 5)), "critical": int(spec.get("max_critical", 0))}
    if "max_medium" in spec:
        limits["medium"] = int(spec["max_medium"])
    threshold = " ".join(f"{k}<={v}" for k, v in limits.items())
    try:
        if "bandit" in spec:
            findings, scanned = bandit_findings(spec, target)
        else:
            findings, scanned = sarif_findings(target.path(spec["sarif"]), target.rootdir)
        accepted: list[Finding] = []
        if "baseline" in spec:
            findings, accepted = _apply_baseline(
                findings, target.path(spec["baseline"]), target.rootdir
            )
    except CheckFailed as exc:
        exc.threshold = threshold
        exc.message = redact(exc.message, target.secrets)
        return exc.outcome()
    outcome = evaluate(findings, limits, scanned)
    outcome.threshold = threshold
    outcome.message = redact(outcome.message, target.secrets)
    outcome.details["baselined"] = len(accepted)
    return outcome


def evaluate(findings: list[Finding], limits: Mapping[str, int], scanned: str) -> Outcome:
    """Counts against limits: the Outcome (rollback set when criticals exceed their limit)."""
    counts = {level: sum(1 for f in findings if f.severity == level) for level in LEVELS}
    measured = " ".join(f"{k}={counts[k]}" for k in ("high", "critical", "medium") if k in limits)
    over = [k for k in LEVELS if k in limits and counts[k] > limits[k]]
    details: dict[str, Any] = {"counts": counts}
    if not over:
        return Outcome(True, f"{measured} within limits ({scanned})", measured, details=details)
    worst = sorted(
        (f for f in findings if f.severity in over),
        key=lambda f: (_RANK[f.severity], f.file, f.line or 0),
    )
    listed = ", ".join(f"{f.rule} at {f.where()} ({f.severity})" for f in worst[:3])
    more = f" and {len(worst) - 3} more" if len(worst) > 3 else ""
    excess = ", ".join(f"{counts[k]} {k} > max_{k} {limits[k]}" for k in over)
    details["findings"] = [f.__dict__ for f in worst[:50]]
    return Outcome(
        False,
        f"{excess}: {listed}{more}",
        measured,
        rollback=True if "critical" in over else None,
        details=details,
    )


def _norm(path: str, rootdir: Path) -> str:
    if path.startswith("file://"):
        path = path[len("file://") :]
    p = Path(path)
    if p.is_absolute() and p.resolve().is_relative_to(rootdir.resolve()):
        p = p.resolve().relative_to(rootdir.resolve())
    text = p.as_posix()
    while text.startswith("./"):
        text = text[2:]
    return text


def _load_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise CheckFailed(f"{what} {path} not found")
    if path.stat().st_size > MAX_REPORT:
        raise CheckFailed(f"{what} {path} is larger than {MAX_REPORT // 2**20} MiB")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckFailed(f"{what} {path} is not valid JSON: {exc}") from None


# ---------------------------------------------------------------- bandit


def _bandit_severity(result: Mapping[str, Any]) -> str:
    severity = str(result.get("issue_severity", "")).upper()
    confidence = str(result.get("issue_confidence", "")).upper()
    if severity == "HIGH":
        return "high" if confidence == "HIGH" else "medium"
    if severity == "MEDIUM":
        return "medium"
    if severity == "LOW":
        return "low"
    return "high"  # UNDEFINED or unknown: count it, do not let it slip through


def bandit_findings(spec: Mapping[str, Any], target: Target) -> tuple[list[Finding], str]:
    """Run bandit (or read its report): the findings and what was scanned."""
    if "report" in spec:
        path = target.path(spec["report"])
        data = _load_json(path, "bandit report")
        where = spec["report"]
    else:
        paths = [spec["bandit"]] if isinstance(spec["bandit"], str) else list(spec["bandit"])
        data = _run_bandit(paths, list(spec.get("exclude", [])), spec, target)
        where = ", ".join(paths)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise CheckFailed(f"bandit report {where}: not a bandit JSON report (no 'results' list)")
    errors = data.get("errors") or []
    if not isinstance(errors, list):
        raise CheckFailed(f"bandit report {where}: malformed: 'errors' is not a list")
    if errors:
        first = errors[0] if isinstance(errors[0], dict) else {"reason": str(errors[0])}
        name = _norm(str(first.get("filename", "?")), target.rootdir)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CheckFailed(
            f"bandit could not scan {len(errors)} file(s): {name}: {first.get('reason', '?')}{more}"
        )
    metrics = data.get("metrics")
    totals = metrics.get("_totals") if isinstance(metrics, dict) else None
    if not isinstance(totals, dict):
        raise CheckFailed(f"bandit report {where}: malformed: no 'metrics._totals' object")
    counts = {k: totals.get(k, 0) for k in ("loc", "nosec", "skipped_tests")}
    for key, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckFailed(
                f"bandit report {where}: malformed: metrics._totals.{key} is {value!r}, "
                "expected a count"
            )
    bad = next((n for n, r in enumerate(data["results"]) if not isinstance(r, dict)), None)
    if bad is not None:
        raise CheckFailed(f"bandit report {where}: malformed: results[{bad}] is not an object")
    loc = counts["loc"]
    if loc <= 0:
        raise CheckFailed(f"bandit scanned 0 lines of code in {where}: check the paths")
    hidden = counts["nosec"] + counts["skipped_tests"]
    if hidden:
        raise CheckFailed(
            f"bandit report {where} hides {hidden} finding(s) behind # nosec; rerun bandit with "
            "--ignore-nosec (accept findings in the baseline file with a reason)"
        )
    findings = [
        Finding(
            rule=str(r.get("test_id", "?")),
            file=_norm(str(r.get("filename", "?")), target.rootdir),
            line=r.get("line_number") if isinstance(r.get("line_number"), int) else None,
            severity=_bandit_severity(r),
            text=str(r.get("issue_text", "")),
        )
        for r in data["results"]
    ]
    return findings, f"bandit, {loc} lines in {where}"


def _run_bandit(
    paths: list[str], exclude: list[str], spec: Mapping[str, Any], target: Target
) -> Any:
    if importlib.util.find_spec("bandit") is None:
        raise CheckFailed(f"bandit is not installed for {sys.executable}: pip install bandit")
    timeout = float(spec.get("timeout", DEFAULT_TIMEOUT))
    with tempfile.TemporaryDirectory() as tmp:
        out, ini = Path(tmp) / "bandit.json", Path(tmp) / "empty.bandit"
        ini.write_text("[bandit]\n")  # so a project .bandit cannot skip tests
        argv = [sys.executable, "-m", "bandit", "-f", "json", "-q", "--ignore-nosec"]
        argv += ["--ini", str(ini), "-o", str(out)]
        if exclude:
            argv += ["-x", ",".join(exclude)]
        argv += ["-r", "--", *paths]  # "--": a path is never read as an option
        # stdout is not used (the report goes to -o); stderr goes to a file, only its tail is read
        with open(Path(tmp) / "stderr", "w+b") as err:
            try:
                proc = subprocess.run(
                    argv,
                    cwd=target.rootdir,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    timeout=timeout,
                    check=False,
                    env={**os.environ, "PYTHONIOENCODING": "utf-8"},
                )
            except subprocess.TimeoutExpired:
                raise CheckFailed(f"bandit timed out after {timeout:g} s") from None
            except OSError as exc:
                raise CheckFailed(f"bandit could not start: {exc}") from None
            err.seek(max(0, err.seek(0, os.SEEK_END) - 4000))
            stderr = err.read(4000).decode("utf-8", "replace").strip()
        last = stderr.splitlines()[-1] if stderr else "no output"
        if proc.returncode not in (0, 1):
            raise CheckFailed(f"bandit failed (exit {proc.returncode}): {last}")
        if not out.is_file() or out.stat().st_size == 0:
            raise CheckFailed(f"bandit wrote no report (exit {proc.returncode}): {last}")
        return _load_json(out, "bandit report")


# ---------------------------------------------------------------- SARIF


def sarif_severity(result: Mapping[str, Any], rule: Mapping[str, Any] | None) -> str:
    """GitHub code scanning's mapping: security-severity score, else the level."""
    for props in (result.get("properties"), (rule or {}).get("properties")):
        if isinstance(props, dict) and "security-severity" in props:
            try:
                score = float(props["security-severity"])
            except (TypeError, ValueError):
                continue
            if score != score:  # NaN
                continue
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
        if inv.get("executionSuccessful") is False:
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
                severity=sarif_severity(result, rule),
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


# ---------------------------------------------------------------- baseline


def _apply_baseline(
    findings: list[Finding], path: Path, rootdir: Path
) -> tuple[list[Finding], list[Finding]]:
    entries = _load_json(path, "security baseline")
    if not isinstance(entries, list):
        raise CheckFailed(
            f"security baseline {path}: expected a JSON list of {{rule, file, line?, reason}}"
        )
    keys: list[tuple[str, str, int | None]] = []
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not entry.get("rule") or not entry.get("file"):
            raise CheckFailed(f"security baseline {path}: entry #{n} needs 'rule' and 'file'")
        if not str(entry.get("reason", "")).strip():
            raise CheckFailed(
                f"security baseline {path}: entry #{n} ({entry['rule']} in {entry['file']}) has no reason"
            )
        line = entry.get("line")
        keys.append(
            (
                str(entry["rule"]),
                _norm(str(entry["file"]), rootdir),
                line if isinstance(line, int) else None,
            )
        )
    kept: list[Finding] = []
    accepted: list[Finding] = []
    for f in findings:
        hit = any(r == f.rule and p == f.file and (ln is None or ln == f.line) for r, p, ln in keys)
        (accepted if hit else kept).append(f)
    return kept, accepted
