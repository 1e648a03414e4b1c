"""pip-audit JSON and CycloneDX VEX through the security kind, from recorded outputs
(tests/data/vuln/README.md says where each comes from): the seed's thresholds by default,
suppressions that expire."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_promotion.checks import security
from pytest_promotion.checks.base import CheckConfigError, Outcome, Target

DATA = Path(__file__).parent.parent / "data" / "vuln"


@pytest.fixture
def target(tmp_path: Path) -> Target:
    for name in ("pip-audit.json", "pip-audit-offline.json", "pip-audit.cdx.json", "vex.cdx.json"):
        shutil.copy(DATA / name, tmp_path)
    return Target(env="prod", rootdir=tmp_path)


def run(target: Target, baseline: list[dict[str, Any]] | None = None, **spec: Any) -> Outcome:
    if baseline is not None:
        (target.rootdir / "baseline.json").write_text(json.dumps(baseline))
        spec["baseline"] = "baseline.json"
    security.validate(spec, "W")
    outcome = security.run(spec, target)
    return outcome


def test_pip_audit_findings_count_as_high(target: Target) -> None:
    out = run(target, pip_audit="pip-audit.json")
    assert out.passed, out.message
    assert out.measured == "high=3 critical=0"
    assert out.threshold == "high<=5 critical<=0"
    assert out.details["warnings"] == [
        "1 dependencies not audited by pip-audit: my-internal-lib (Dependency not found on "
        "PyPI and could not be audited: my-internal-lib (1.0))"
    ]
    assert out.message.startswith("high=3 critical=0 within limits (pip-audit, 3 dependencies")


def test_pip_audit_severity_maps_ids_and_aliases(target: Target) -> None:
    out = run(
        target,
        pip_audit="pip-audit.json",
        pip_audit_severity={"CVE-2024-35195": "critical", "default": "low"},
    )
    assert not out.passed
    assert out.rollback is True  # the seed: a critical finding rolls back
    assert out.message.startswith(
        "1 critical > max_critical 0: GHSA-9wx4-h78v-vm56 at requests (critical)"
    )
    over = run(target, pip_audit="pip-audit.json", max_high=2)
    assert (over.passed, over.rollback) == (False, None)  # only blocks
    assert over.message.startswith("3 high > max_high 2: GHSA-h5c8-rqwp-cp95 at jinja2 (high)")


def test_pip_audit_that_audited_nothing_fails(target: Target) -> None:
    # recorded: pip-audit could reach no advisory service, exited 0, "No known vulnerabilities"
    out = run(target, pip_audit="pip-audit-offline.json")
    assert not out.passed
    assert out.message.startswith(
        f"pip-audit report {target.rootdir / 'pip-audit-offline.json'} audited no dependency "
        "(4 skipped: jinja2 (Dependency not found on PyPI"
    )


def test_vex_analysis_and_ratings(target: Target) -> None:
    out = run(target, vex="vex.cdx.json")
    assert not out.passed and out.rollback is True
    assert out.measured == "high=0 critical=1"
    assert out.message == ("1 critical > max_critical 0: GHSA-h75v-3vvj-5mfj at Jinja2 (critical)")
    # not_affected with a justification is not counted; without one it counts again
    data = json.loads((target.rootdir / "vex.cdx.json").read_text())
    for vuln in data["vulnerabilities"]:
        vuln.get("analysis", {}).pop("justification", None)
        vuln.get("analysis", {}).pop("detail", None)
    (target.rootdir / "vex.cdx.json").write_text(json.dumps(data))
    assert run(target, vex="vex.cdx.json", max_critical=1).measured == "high=0 critical=1"
    assert run(target, vex="vex.cdx.json").details["counts"]["medium"] == 2


def test_cyclonedx_without_ratings_counts_high(target: Target) -> None:
    out = run(target, vex="pip-audit.cdx.json", max_high=2)
    assert not out.passed
    assert out.message.startswith("3 high > max_high 2: ")


def test_suppression_with_expiry(target: Target) -> None:
    entry = {"rule": "CVE-2024-34064", "file": "Jinja2", "reason": "xmlattr unused"}
    held = run(target, [{**entry, "expires": "2999-12-31"}], vex="vex.cdx.json")
    assert held.passed, held.message
    assert held.details["baselined"] == 1
    lapsed = run(target, [{**entry, "expires": "2020-01-31"}], vex="vex.cdx.json")
    assert not lapsed.passed
    assert lapsed.message == (
        "1 critical > max_critical 0: GHSA-h75v-3vvj-5mfj at Jinja2 (critical); baseline "
        "entry #1 (CVE-2024-34064 in Jinja2) expired on 2020-01-31: counted again"
    )
    assert lapsed.details["warnings"] == [
        "baseline entry #1 (CVE-2024-34064 in Jinja2) expired on 2020-01-31: counted again"
    ]
    bad = run(target, [{**entry, "expires": "soon"}], vex="vex.cdx.json")
    assert bad.message.endswith(
        "entry #1 (CVE-2024-34064 in Jinja2): 'expires' is 'soon', expected a date like \"2026-06-30\""
    )
    assert run(target, [entry], vex="vex.cdx.json").passed  # no expires: as before
    # not a date: refused, never a suppression that holds for ever
    for value in (20200131, "2999-12-31 maybe", True):
        odd = run(target, [{**entry, "expires": value}], vex="vex.cdx.json")
        assert not odd.passed
        assert odd.message.endswith(f"'expires' is {value!r}, expected a date like \"2026-06-30\"")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"pip_audit": ""}, "W: key 'pip_audit': expected the path of pip-audit's JSON, found ''"),
        (
            {"vex": "b.json", "pip_audit_severity": {"X": "high"}},
            "W: key 'pip_audit_severity': only for a pip_audit check, found {'X': 'high'}",
        ),
        (
            {"pip_audit": "a.json", "pip_audit_severity": {"X": "severe"}},
            "W: key 'pip_audit_severity': expected one of critical, high, medium, low for 'X', "
            "found 'severe'",
        ),
    ],
)
def test_validate(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckConfigError) as info:
        security.validate(spec, "W")
    assert str(info.value) == message
