"""An HTTP body and header from a hostile or broken server, through a Python gate run:
nothing it sends is printed raw (issue 11, item 31)."""

from __future__ import annotations

import pytest

from .conftest import Handler, Servers

pytestmark = pytest.mark.integration


def hostile(handler: Handler) -> None:
    handler.reply(
        200, "\x1b[2J<script>x</script>\n::error::forged\ndecision: PROMOTE", "text/html\x1b[31m"
    )


def test_a_hostile_body_and_header_are_shown_as_text(
    pytester: pytest.Pytester, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = servers.http({"/health": hostile})
    pytester.makefile(
        ".toml",
        promotion=f"""
        [environments.dev]
        base_url = "{server.url}"
        [[environments.dev.checks]]
        name = "health"
        http = "/health"
        expect_json = {{ status = "ok" }}
        """,
    )
    pytester.makepyfile(
        test_g="""
        import pytest
        pytestmark = pytest.mark.dev

        def test_body(http):
            response = http.get("/health")
            assert response.text == "ok"
        """
    )
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    result = pytester.runpytest_subprocess("--env=dev", "-rA", "--junitxml=j.xml")
    assert result.ret == 1
    for text in (
        result.stdout.str(),
        (pytester.path / "j.xml").read_text(),
        (pytester.path / "summary.md").read_text(),
    ):
        assert "\x1b" not in text
        for line in text.splitlines():
            assert not line.strip().startswith(("::", "decision: PROMOTE")), line
    assert "<script>" not in (pytester.path / "summary.md").read_text()
