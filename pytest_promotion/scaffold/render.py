"""The files ``promotion init`` writes, as text: promotion.toml (commented), a gates/
starter suite, Makefile targets and the CI recipe of templates/."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from .detect import Layout

__all__ = ["CI_FILES", "ENVIRONMENTS", "Planned", "plan_files", "promotion_toml"]

ENVIRONMENTS = ("dev", "staging", "prod")
# --ci NAME -> (template under templates/, where init writes it)
CI_FILES = {
    "github": ("github.yml", ".github/workflows/environment-promotion.yml"),
    "gitlab": ("gitlab-ci.yml", ".gitlab-ci.yml"),
    "jenkins": ("Jenkinsfile", "Jenkinsfile"),
}
MAKEFILE_MARK = "# promotion gates (promotion init)"


@dataclass(frozen=True)
class Planned:
    path: str  # relative to the repository
    text: str
    append: bool = False  # added to the end of an existing file


def template(name: str) -> str:
    return (files(__package__) / "templates" / name).read_text(encoding="utf-8")


_HEADER = """\
# Promotion gates: which checks a release must pass to move dev -> staging -> prod.
# Written by `promotion init`; every key is in docs/config-reference.md of pytest-promotion.
# `promotion validate` checks this file, `promotion plan --env staging` lists what would run,
# `pytest --env=dev gates/` runs dev's gates and decides: promote, block or rollback.

[promotion]
environments = ["dev", "staging", "prod"]   # the chain, in order
"""

_ENV = """
[environments.{env}]
base_url = "${{{var}}}"   # the deployed service, e.g. https://{env}.example.com ({var} in CI)
timeout = 10             # seconds, per probe
# ca_bundle = "certs/ca.pem"   # a private CA; TLS is always verified
{rollback}"""

_HEALTH = """
# --- health: the deployed service answers /health with 200 within a second -----------
# A failure is a rollback trigger: the release is live and broken.
[[checks]]
name = "health"
from = "dev"                    # dev and every later environment
http = "/health"
expect_status = 200
max_latency_ms = 1000
trigger = "rollback"
wait = {{ timeout = 60, interval = 2 }}   # a fresh deployment may need a minute
# expect_json = {{ status = "ok" }}      # and what the body must say

# A certificate that expires within 14 days blocks (prod: set PROD_HOSTPORT = host:443).
# [[checks]]
# name = "certificate"
# from = "prod"
# tls = "${{PROD_HOSTPORT}}"
# min_days_valid = 14
"""

_SECURITY = """
# --- security posture (docs/security-checks.md of pytest-promotion): the ready set ----
# Posture failures block (a missing header is not an outage); a check that cannot run
# blocks too. Responses: HSTS for a year, nosniff, no version banner, no debug paths.
[[checks]]
name = "response-posture"
from = "dev"
http = "/health"
expect_headers = {{ "Strict-Transport-Security" = "max-age=\\\\d{{8,}}.*", "X-Content-Type-Options" = "nosniff" }}
forbid_headers = ["Server: .*\\\\d", "X-Powered-By"]
forbid_paths = ["/debug/pprof/", "/.env", "/.git/config", "/metrics"]

# No TLS below 1.2, no weak cipher, forward secrecy. Set TLS_HOSTPORT (host:443) per
# environment in CI, as the URLs; unset, the check names it and blocks (.invalid never resolves).
[[checks]]
name = "tls-posture"
from = "staging"
tls = "${{TLS_HOSTPORT:-set-TLS_HOSTPORT.invalid:443}}"
refuse_below = "1.2"
forbid_ciphers = ["RC4", "3DES", "NULL", "EXPORT", "aNULL", "MD5"]
require_forward_secrecy = true

# The TLS key on the hosts is private: list them in [environments.X] hosts = ["ssh://deploy@web1"]
# (local, ssh, docker, kubectl: pytest-testinfra's backends); adapt the path and owner.
[[checks]]
name = "tls-key-private"
from = "staging"
file = ["/app/certs/server.key"]
mode = "0600"
owner = "app"
not_world_readable = true

# Vulnerabilities: critical -> rollback, at most 5 high (the defaults). A scanner's SARIF
# (trivy, grype, osv-scanner), pip-audit's JSON (pip_audit = ...) or CycloneDX VEX (vex = ...).
[[checks]]
name = "dependencies"
from = "staging"
{findings}
"""

_PYTHON = """
# --- Python ({package}/): unit tests under coverage, coverage, bandit, ruff ----------
# Needs pytest-cov, bandit and ruff where the gates run: pip install 'pytest-promotion[quality]' pytest-cov ruff
[[checks]]
name = "unit-tests"
from = "dev"
command = [
    "{{python}}", "-m", "pytest", "{tests}", "-q", "-p", "no:cacheprovider",
    "--cov={module}", "--cov-report=xml:build/coverage.xml", "--junitxml=build/unit-tests.xml",
]
junit = "build/unit-tests.xml"   # its pass/fail counts are the measure
timeout = 1200

[[checks]]
name = "coverage"
from = "dev"
coverage = "build/coverage.xml"  # written by unit-tests just before
min = 60                         # percent

[[checks]]
name = "security"
from = "dev"
bandit = ["{package}"]           # at most 5 high, no critical finding (the defaults)

[[checks]]
name = "format"
from = "dev"
command = ["{{python}}", "-m", "ruff", "format", "--check", "."]

[[checks]]
name = "lint"
from = "dev"
command = ["{{python}}", "-m", "ruff", "check", "."]
"""

_GO = """
# --- Go ({module}): vet, tests, gofmt ------------------------------------------------
[[checks]]
name = "go-vet"
from = "dev"
command = ["go", "vet", "./..."]

[[checks]]
name = "go-test"
from = "dev"
command = ["go", "test", "./..."]
timeout = 1200

[[checks]]
name = "gofmt"
from = "dev"
command = ["gofmt", "-l", "."]
expect_empty_output = true        # a file gofmt would change is listed: a failure
"""

_DOCKER = """
# --- Dockerfile: a SARIF scanner (trivy) from staging on ------------------------------
# Needs trivy where the gates run (https://trivy.dev); any SARIF scanner fits the sarif kind.
[[checks]]
name = "image-scan"
from = "staging"
command = ["trivy", "config", "--format", "sarif", "--output", "build/trivy.sarif", "."]

[[checks]]
name = "image-findings"
from = "staging"
sarif = "build/trivy.sarif"
max_critical = 0
max_high = 5
"""

_GATES = '''\
"""Gates written in Python (promotion init): they run with `pytest --env=NAME gates/`.

A module-level marker makes every test here a gate: `dev` = dev, staging and prod
(cumulative along the chain); `pytest.mark.staging(only=True)` pins a gate to one.
Fixtures: `http` (a client on the environment's base_url, TLS verified), `gate`
(gate.measure records what was measured), `promotion_env` (the environment's settings).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.dev


@pytest.mark.gate(name="smoke", trigger="rollback")
def test_service_answers(http, gate) -> None:
    """The deployed service answers at all: a failure is a rollback trigger."""
    response = http.get("/health")
    gate.measure(response.status_code, threshold="== 200")
    assert response.status_code == 200
'''

_MAKE = """
{mark}
PROMOTION_PYTHON ?= python3
.PHONY: promote-dev promote-staging promote-prod
promote-dev promote-staging promote-prod: promote-%:
\t$(PROMOTION_PYTHON) -m pytest --env=$* gates/ --junitxml=gate-$*.xml --promotion-report=decision-$*.json
"""


def promotion_toml(layout: Layout, ci: str | None) -> str:
    parts = [_HEADER]
    for env in ENVIRONMENTS:
        if ci == "github":
            rollback = (
                'rollback = "gh workflow run environment-promotion.yml --field rollback=true '
                '--field environment={env}"\n'
            )
        else:
            rollback = (
                '# rollback = "./deploy.sh rollback {env} {previous_version}"'
                "   # printed; run by --promotion-rollback=execute\n"
            )
        parts.append(_ENV.format(env=env, var=f"{env.upper()}_URL", rollback=rollback))
    parts.append(_HEALTH.format())
    if layout.python_package:
        module = layout.python_package.rsplit("/", 1)[-1]
        tests = layout.python_tests or "."
        parts.append(_PYTHON.format(package=layout.python_package, module=module, tests=tests))
    if layout.go_module:
        parts.append(_GO.format(module=layout.go_module))
    if layout.dockerfile:
        parts.append(_DOCKER)
    parts.append(_SECURITY.format(findings=_findings(layout)))
    return "".join(parts)


def _findings(layout: Layout) -> str:
    """The ready set's vulnerability gate: pip-audit for a Python package, else a SARIF."""
    if layout.python_package:
        return (
            'pip_audit = "build/pip-audit.json"   '
            "# pip-audit -f json --aliases -o build/pip-audit.json"
        )
    return 'sarif = "build/scan.sarif"   # trivy fs --format sarif --output build/scan.sarif .'


def plan_files(layout: Layout, ci: str | None, makefile: bool) -> list[Planned]:
    """What init would write; ``makefile``: add the targets to an existing Makefile."""
    planned = [
        Planned("promotion.toml", promotion_toml(layout, ci)),
        Planned("gates/test_smoke.py", _GATES),
    ]
    make = _MAKE.format(mark=MAKEFILE_MARK)
    if not layout.makefile:
        planned.append(Planned("Makefile", make.lstrip("\n")))
    elif makefile:
        planned.append(Planned("Makefile", make, append=True))
    if ci is not None:
        name, path = CI_FILES[ci]
        planned.append(Planned(path, template(name)))
    return planned
