"""The ``bandit`` and ``sarif`` check kinds: security findings stay under their limits.

- ``bandit = ["src"]``: run bandit on these paths (``python -m bandit -f json -r``, with
  ``--ignore-nosec`` and without the project's ``.bandit`` file, so nothing is hidden), or
  read a report a CI step wrote: ``report = "bandit.json"``. ``exclude`` adds ``-x`` paths.
- ``sarif = "results.sarif"``: any SARIF 2.1 file (gosec, semgrep, trivy, CodeQL, ...).
- ``pip_audit = "audit.json"`` (pip-audit's JSON) and ``vex = "bom.cdx.json"`` (CycloneDX,
  with or without VEX analysis), where no SARIF is given: see :mod:`.vuln_reports`.

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
list of ``{"rule", "file", "line"?, "reason", "expires"?}``, the reason mandatory; an
entry whose ``expires`` date (``"2026-06-30"``, the last day it holds) has passed
accepts nothing any more, and the check says so.

Fail closed: bandit missing or crashed, files it could not parse, 0 lines scanned, a
SARIF file that is not SARIF 2.1, has no runs, a run without ``results`` or reporting a
failed execution: each fails with the reason, never "0 findings".
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..process import Tail, child_environment, collect, kill_group, spawn
from ..redact import redact
from .base import CheckConfigError, CheckFailed, Outcome, Target
from .findings import LEVELS, Finding
from .findings import load_json as _load_json
from .findings import norm_path as _norm
from .sarif_report import sarif_findings, sarif_severity
from .vuln_reports import cyclonedx_findings, pip_audit_findings

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
    "pip_audit": str,
    "vex": str,
    "pip_audit_severity": dict,
    "report": str,
    "exclude": list,
    "baseline": str,
    "max_critical": int,
    "max_high": int,
    "max_medium": int,
}
ROLLBACK = False
DEFAULT_TIMEOUT = 600.0
_RANK = {name: i for i, name in enumerate(LEVELS)}


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
        _validate_report(spec, where)
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


_REPORTS = {"sarif": "a SARIF file", "pip_audit": "pip-audit's JSON", "vex": "a CycloneDX file"}


def _validate_report(spec: Mapping[str, Any], where: str) -> None:
    key = next((k for k in _REPORTS if k in spec), "sarif")
    if not isinstance(spec.get(key), str) or not spec[key]:
        raise CheckConfigError(
            f"{where}: key {key!r}: expected the path of {_REPORTS[key]}, found {spec.get(key)!r}"
        )
    mapping = spec.get("pip_audit_severity", {})
    if mapping and key != "pip_audit":
        raise CheckConfigError(
            f"{where}: key 'pip_audit_severity': only for a pip_audit check, found {mapping!r}"
        )
    for vid, level in mapping.items():
        if level not in LEVELS:
            raise CheckConfigError(
                f"{where}: key 'pip_audit_severity': expected one of {', '.join(LEVELS)} "
                f"for {vid!r}, found {level!r}"
            )


def _findings(spec: Mapping[str, Any], target: Target) -> tuple[list[Finding], str, list[str]]:
    if "bandit" in spec:
        return (*bandit_findings(spec, target), [])
    if "pip_audit" in spec:
        return pip_audit_findings(
            target.path(spec["pip_audit"]), spec.get("pip_audit_severity", {})
        )
    if "vex" in spec:
        return cyclonedx_findings(target.path(spec["vex"]))
    return (*sarif_findings(target.path(spec["sarif"]), target.rootdir), [])


def run(spec: Mapping[str, Any], target: Target) -> Outcome:
    limits = {"high": int(spec.get("max_high", 5)), "critical": int(spec.get("max_critical", 0))}
    if "max_medium" in spec:
        limits["medium"] = int(spec["max_medium"])
    threshold = " ".join(f"{k}<={v}" for k, v in limits.items())
    try:
        findings, scanned, warnings = _findings(spec, target)
        accepted: list[Finding] = []
        if "baseline" in spec:
            findings, accepted, expired = _apply_baseline(
                findings, target.path(spec["baseline"]), target.rootdir
            )
            warnings += expired
    except CheckFailed as exc:
        exc.threshold = threshold
        exc.message = redact(exc.message, target.secrets)
        return exc.outcome()
    outcome = evaluate(findings, limits, scanned)
    outcome.threshold = threshold
    if warnings:  # every report shows the message: expired suppressions, unaudited packages
        outcome.message += "; " + "; ".join(warnings)
        outcome.details["warnings"] = warnings
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
        # stdout is not used (the report goes to -o); of stderr only the tail is kept
        # (process.py: bounded pipe, deadline, the process group killed however it ends)
        try:
            proc = spawn(
                argv,
                cwd=target.rootdir,
                stdout=subprocess.DEVNULL,
                env=child_environment({"PYTHONIOENCODING": "utf-8"}),
            )
        except OSError as exc:
            raise CheckFailed(f"bandit could not start: {exc}") from None
        assert proc.stderr is not None
        err = Tail(proc.stderr.fileno(), 4000)
        try:
            code = collect(proc, [err], timeout)
        finally:
            kill_group(proc)
            proc.stderr.close()
        if code is None:
            raise CheckFailed(f"bandit timed out after {timeout:g} s")
        stderr = err.text().strip()
        last = stderr.splitlines()[-1] if stderr else "no output"
        if code not in (0, 1):
            raise CheckFailed(f"bandit failed (exit {code}): {last}")
        if not out.is_file() or out.stat().st_size == 0:
            raise CheckFailed(f"bandit wrote no report (exit {code}): {last}")
        return _load_json(out, "bandit report")


# ---------------------------------------------------------------- baseline


def _expires(entry: Mapping[str, Any], n: int, path: Path) -> date | None:
    value = entry.get("expires")
    if value is None:
        return None
    # A number (20260630) or a string with more than a date was read as "no expiry":
    # the suppression then held for ever. Only a whole YYYY-MM-DD date is one.
    if isinstance(value, str) and len(value) == 10:
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value)
    raise CheckFailed(
        f"security baseline {path}: entry #{n} ({entry['rule']} in {entry['file']}): "
        f"'expires' is {value!r}, expected a date like \"2026-06-30\""
    )


def _apply_baseline(
    findings: list[Finding], path: Path, rootdir: Path
) -> tuple[list[Finding], list[Finding], list[str]]:
    entries = _load_json(path, "security baseline")
    if not isinstance(entries, list):
        raise CheckFailed(
            f"security baseline {path}: expected a JSON list of {{rule, file, line?, reason}}"
        )
    keys: list[tuple[str, str, int | None]] = []
    expired: list[str] = []
    today = datetime.now(UTC).date()
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not entry.get("rule") or not entry.get("file"):
            raise CheckFailed(f"security baseline {path}: entry #{n} needs 'rule' and 'file'")
        if not str(entry.get("reason", "")).strip():
            raise CheckFailed(
                f"security baseline {path}: entry #{n} ({entry['rule']} in {entry['file']}) has no reason"
            )
        line = entry.get("line")
        if line is not None and (not isinstance(line, int) or isinstance(line, bool)):
            # a quoted "41" would have accepted the rule anywhere in the file
            raise CheckFailed(
                f"security baseline {path}: entry #{n} ({entry['rule']} in {entry['file']}): "
                f"'line' is {line!r}, expected a line number (or no 'line' for the whole file)"
            )
        until = _expires(entry, n, path)
        if until is not None and until < today:
            expired.append(
                f"baseline entry #{n} ({entry['rule']} in {entry['file']}) expired on "
                f"{until:%Y-%m-%d}: counted again"
            )
            continue
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
        hit = any(
            (r == f.rule or r in f.aliases) and p == f.file and (ln is None or ln == f.line)
            for r, p, ln in keys
        )
        (accepted if hit else kept).append(f)
    return kept, accepted, expired
