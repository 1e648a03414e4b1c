"""The embedded demo target that `make promote-dev` checks: real HTTPS, its own CA."""

from __future__ import annotations

import requests

from pytest_promotion.checks import kind_module
from pytest_promotion.checks.base import Target
from pytest_promotion.demo import DemoService


def test_demo_serves_health_over_verified_tls() -> None:
    demo = DemoService.start(version="9.9.9")
    try:
        response = requests.get(f"{demo.url}/health", verify=demo.ca_bundle, timeout=5)
        assert response.json() == {"status": "ok", "version": "9.9.9"}
        tls = kind_module("tls").run(
            {"tls": f"127.0.0.1:{demo.port}"}, Target(env="dev", ca_bundle=demo.ca_bundle)
        )
        assert tls.passed, tls.message
        untrusted = kind_module("http").run({"http": f"{demo.url}/health"}, Target(env="dev"))
        assert not untrusted.passed  # not trusted by the system store: verification is on
    finally:
        demo.stop()
