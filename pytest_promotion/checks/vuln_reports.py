"""Dependency and image vulnerability reports that are not SARIF: pip-audit's JSON and
CycloneDX (VEX) documents, read into :class:`~.findings.Finding` objects.

- pip-audit (``pip-audit -f json``): every vulnerability of every audited dependency.
  pip-audit gives no severity: a finding is **high** unless ``pip_audit_severity`` maps
  its id or one of its aliases (``{ "GHSA-..." = "critical", "default" = "medium" }``).
  Skipped dependencies were not audited: all of them skipped (pip-audit exits 0 and says
  "No known vulnerabilities found" when it could reach no advisory service) fails the
  check; some skipped is a warning line naming them.
- CycloneDX (``-f cyclonedx-json``, trivy/grype ``--format cyclonedx``, a VEX document):
  ``vulnerabilities[]``; severity from ``ratings`` (the worst rating's ``severity``, else
  its ``score``: >= 9 critical, >= 7 high, >= 4 medium), none: high. The VEX ``analysis``
  decides what still counts: ``resolved`` / ``resolved_with_pedigree`` never count;
  ``not_affected`` / ``false_positive`` do not count *when they give a justification or a
  detail* (a reason, as our baseline demands), else they count; anything else counts.

Findings name the package (``file``) and the advisory (``rule``, with aliases such as the
CVE id), so a baseline entry is ``{"rule": "GHSA-...", "file": "jinja2", "reason": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .base import CheckFailed
from .findings import LEVELS, Finding, load_json

__all__ = ["cyclonedx_findings", "pip_audit_findings"]

_GONE = ("resolved", "resolved_with_pedigree")
_EXCUSED = ("not_affected", "false_positive")
_CDX_SEVERITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low"}


def _score_level(score: float) -> str:
    return "critical" if score >= 9 else "high" if score >= 7 else "medium" if score >= 4 else "low"


def _mapped(severity: Mapping[str, str], ids: list[str]) -> str:
    for vid in ids:
        if vid in severity:
            return severity[vid]
    return severity.get("default", "high")


def pip_audit_findings(
    path: Path, severity: Mapping[str, str]
) -> tuple[list[Finding], str, list[str]]:
    """The findings, what was scanned, and warnings (dependencies not audited)."""
    data = load_json(path, "pip-audit report")
    deps = data.get("dependencies") if isinstance(data, dict) else data
    if not isinstance(deps, list):
        raise CheckFailed(
            f"pip-audit report {path}: expected pip-audit's JSON (-f json) with a "
            "'dependencies' list"
        )
    findings: list[Finding] = []
    skipped: list[str] = []
    audited = 0
    for n, dep in enumerate(deps):
        if not isinstance(dep, dict) or not isinstance(dep.get("name"), str):
            raise CheckFailed(f"pip-audit report {path}: dependencies[{n}] has no name")
        if "skip_reason" in dep:
            skipped.append(f"{dep['name']} ({dep['skip_reason']})")
            continue
        vulns = dep.get("vulns")
        if not isinstance(vulns, list):
            raise CheckFailed(f"pip-audit report {path}: {dep['name']} has no 'vulns' list")
        audited += 1
        for m, vuln in enumerate(vulns):
            if not isinstance(vuln, dict) or not isinstance(vuln.get("id"), str):
                raise CheckFailed(f"pip-audit report {path}: {dep['name']} vulns[{m}] has no id")
            aliases = tuple(str(a) for a in vuln.get("aliases") or [])
            fixes = ", ".join(str(v) for v in vuln.get("fix_versions") or []) or "none"
            findings.append(
                Finding(
                    rule=vuln["id"],
                    file=dep["name"],
                    line=None,
                    severity=_mapped(severity, [vuln["id"], *aliases]),
                    text=f"{dep['name']} {dep.get('version', '?')}, fixed in {fixes}",
                    aliases=aliases,
                )
            )
    if audited == 0:
        first = f": {skipped[0]}" if skipped else ""
        raise CheckFailed(
            f"pip-audit report {path} audited no dependency ({len(skipped)} skipped{first})"
        )
    warnings = []
    if skipped:
        shown = "; ".join(skipped[:3]) + (
            f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        )
        warnings.append(f"{len(skipped)} dependencies not audited by pip-audit: {shown}")
    return findings, f"pip-audit, {audited} dependencies in {path.name}", warnings


def _components(items: Any) -> Iterator[dict[str, Any]]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            yield item
            yield from _components(item.get("components"))


def _cdx_severity(vuln: Mapping[str, Any]) -> str:
    ratings = [r for r in vuln.get("ratings") or [] if isinstance(r, dict)]
    levels = []
    for rating in ratings:
        named = _CDX_SEVERITY.get(str(rating.get("severity", "")).lower())
        if named is None and isinstance(rating.get("score"), int | float):
            named = _score_level(float(rating["score"]))
        if named is not None:
            levels.append(named)
    if not levels:
        return "high"  # no rating (pip-audit's CycloneDX, "unknown"): counted, not ignored
    return min(levels, key=LEVELS.index)


def _counts(vuln: Mapping[str, Any]) -> bool:
    analysis = vuln.get("analysis")
    if not isinstance(analysis, dict):
        return True
    state = analysis.get("state")
    if state in _GONE:
        return False
    if state in _EXCUSED:
        return not (analysis.get("justification") or str(analysis.get("detail") or "").strip())
    return True


def cyclonedx_findings(path: Path) -> tuple[list[Finding], str, list[str]]:
    """The findings of a CycloneDX BOM or VEX document, what it covered, and warnings."""
    data = load_json(path, "CycloneDX file")
    if not isinstance(data, dict) or data.get("bomFormat") != "CycloneDX":
        raise CheckFailed(f'CycloneDX file {path}: expected bomFormat "CycloneDX"')
    vulns = data.get("vulnerabilities")
    if not isinstance(vulns, list):
        raise CheckFailed(
            f"CycloneDX file {path} has no 'vulnerabilities' list: not a vulnerability "
            "report or VEX (the scanner must be asked for vulnerabilities)"
        )
    names = {
        str(c["bom-ref"]): f"{c.get('name', '?')}"
        for c in _components(data.get("components"))
        if "bom-ref" in c
    }
    findings: list[Finding] = []
    excused = 0
    for n, vuln in enumerate(vulns):
        if not isinstance(vuln, dict) or not isinstance(vuln.get("id"), str):
            raise CheckFailed(f"CycloneDX file {path}: vulnerabilities[{n}] has no id")
        if not _counts(vuln):
            excused += 1
            continue
        refs = [a.get("ref") for a in vuln.get("affects") or [] if isinstance(a, dict)]
        aliases = tuple(
            str(r["id"]) for r in vuln.get("references") or [] if isinstance(r, dict) and "id" in r
        )
        for ref in refs or [None]:
            findings.append(
                Finding(
                    rule=vuln["id"],
                    file=names.get(str(ref), str(ref or "?")),
                    line=None,
                    severity=_cdx_severity(vuln),
                    text=str(vuln.get("description", ""))[:200],
                    aliases=aliases,
                )
            )
    tool = (
        "CycloneDX VEX"
        if any("analysis" in v for v in vulns if isinstance(v, dict))
        else "CycloneDX"
    )
    note = f", {excused} not applicable per VEX analysis" if excused else ""
    return findings, f"{tool}, {len(names)} components in {path.name}{note}", []
