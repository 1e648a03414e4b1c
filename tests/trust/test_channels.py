"""Every way pytest shows or writes text, with a secret sent down each (issue 11, the rule
behind items 10 to 16): the output, and every file the run wrote, is searched for it."""

from __future__ import annotations

import pytest

from tests.reports import RunAndParse

from .test_secrets import leaks

pytestmark = pytest.mark.integration

CORE = "S3CRET-CHANNEL"
TOKEN = f"tk-{CORE}-9"

GATES = """
import logging, os, sys, warnings, pytest
pytestmark = pytest.mark.dev
TOKEN = os.environ["API_TOKEN"]
warnings.warn(f"collection warning {TOKEN}")  # a warning at collection
log = logging.getLogger("client")

@pytest.fixture
def client():
    log.warning("setup with %s", TOKEN)
    print("setup print", TOKEN)
    yield TOKEN
    log.warning("teardown with %s", TOKEN)

def test_fails(client):
    token = client
    print("stdout", token)
    print("stderr", token, file=sys.stderr)
    log.error("error %s", token)
    log.info("info %s", token)
    warnings.warn(f"runtime warning {token}")
    sys.stdout.write(repr(token) + "\\n")
    assert token == "expected"

def test_passes(client):
    print("passing", client)
    log.warning("passing %s", client)
"""

# Warnings and log lines outside any test: at configure, session start and finish.
CONFTEST = """
import logging, os, warnings

def pytest_configure(config):
    warnings.warn(f"configure warning {os.environ['API_TOKEN']}")

def pytest_sessionstart(session):
    logging.getLogger("setup").warning("sessionstart %s", os.environ["API_TOKEN"])
    warnings.warn(f"sessionstart warning {os.environ['API_TOKEN']}")

def pytest_sessionfinish(session):
    warnings.warn(f"sessionfinish warning {os.environ['API_TOKEN']}")
    print("sessionfinish print", os.environ["API_TOKEN"])
"""

CHANNELS = {
    "default": [],
    "no capture (-s)": ["-s"],
    "tee-sys": ["--capture=tee-sys"],
    "live logging": ["--log-cli-level=DEBUG"],
    "log file": ["--log-file=run.log", "--log-file-level=DEBUG"],
    "debug file": ["--debug=debug.log"],
    "default debug file": ["--debug"],
    "xdist": ["-n", "2", "-rA"],
    "showlocals, -rA, long tracebacks": ["--showlocals", "-rA", "--tb=long", "-vv"],
    "junit logging all": ["-o", "junit_logging=all", "-o", "junit_log_passing_tests=true"],
    "warnings as errors at collection": ["-W", "error::UserWarning"],
}


@pytest.mark.parametrize("args", list(CHANNELS.values()), ids=list(CHANNELS))
def test_no_channel_shows_a_secret(
    pytester: pytest.Pytester,
    run_and_parse: RunAndParse,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
) -> None:
    monkeypatch.setenv("API_TOKEN", TOKEN)
    pytester.makefile(".toml", promotion='[environments.dev]\nvars = { t = "${API_TOKEN}" }\n')
    pytester.makepyfile(test_g=GATES)
    if "error::UserWarning" not in args:  # there, a configure warning is an INTERNALERROR
        pytester.makeconftest(CONFTEST)  # before any environment is resolved (item 14)
    result, _ = run_and_parse("--env=dev", "--junitxml=j.xml", *args, subprocess=True)
    assert result.ret != 0
    assert leaks(pytester, result, CORE) == []
