from __future__ import annotations

import pytest

from pytest_promotion.checks import tcp
from pytest_promotion.checks.base import CheckConfigError, Target
from tests.support import free_port

from .conftest import Servers

pytestmark = pytest.mark.integration

TARGET = Target(env="dev", timeout=1.0)


def test_open_port(servers: Servers) -> None:
    port = servers.silent()
    out = tcp.run({"tcp": f"127.0.0.1:{port}"}, TARGET)
    assert out.passed
    assert out.message.startswith(f"connected to 127.0.0.1:{port} in ")
    assert isinstance(out.measured, float) and out.unit == "ms"
    assert out.threshold == "<= 1000 ms"


def test_closed_port() -> None:
    port = free_port()
    out = tcp.run({"tcp": f"localhost:{port}", "timeout": 0.5}, TARGET)
    assert (out.passed, out.message, out.threshold) == (
        False,
        f"connection refused by localhost:{port}",
        "<= 500 ms",
    )


def test_unresolvable_host() -> None:
    out = tcp.run({"tcp": "no-such-host.invalid:80", "timeout": 2}, TARGET)
    assert not out.passed
    assert out.message.startswith("cannot resolve ")


def test_split_hostport() -> None:
    assert tcp.split_hostport("db:5432") == ("db", 5432)
    assert tcp.split_hostport("[::1]:443") == ("::1", 443)
    for bad in ("db", "::1:443", ":80", "db:0", "db:http"):
        with pytest.raises(ValueError):
            tcp.split_hostport(bad)


def test_validate() -> None:
    with pytest.raises(CheckConfigError) as info:
        tcp.validate({"tcp": "db"}, "promotion.toml: [[environments.dev.checks]] 'db'")
    assert str(info.value) == (
        "promotion.toml: [[environments.dev.checks]] 'db': key 'tcp': "
        "expected \"host:port\", found 'db' (expected host:port)"
    )
