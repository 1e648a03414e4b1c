"""Repository-level conftest: when this repo's own gates run (``make promote-dev``, i.e.
``pytest --env=dev gates/``), start the embedded demo target before the plugin reads
promotion.toml, whose health checks point at it through ${PROMOTION_DEMO_URL},
${PROMOTION_DEMO_CA} and ${PROMOTION_DEMO_HOSTPORT}. A real deployment sets those
variables itself and no demo starts."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    env = config.getoption("promotion_env", None) or os.environ.get("PROMOTION_ENV")
    if not env or os.environ.get("PROMOTION_DEMO_URL") or hasattr(config, "workerinput"):
        return
    from pytest_promotion import __version__
    from pytest_promotion.demo import DemoService

    demo = DemoService.start(version=__version__)
    os.environ["PROMOTION_DEMO_URL"] = demo.url
    os.environ["PROMOTION_DEMO_CA"] = demo.ca_bundle
    os.environ["PROMOTION_DEMO_HOSTPORT"] = f"127.0.0.1:{demo.port}"
    config.add_cleanup(demo.stop)
