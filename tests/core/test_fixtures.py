"""Fixtures for Python gates: promotion_env, host (pytest-testinfra), probe."""

from __future__ import annotations

import socket

import pytest

from tests.support import free_port


def test_host_fixture_one_test_per_configured_host(pytester: pytest.Pytester, read_report) -> None:
    pytester.makefile(".toml", promotion='[environments.staging]\nhosts = ["local://"]\n')
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.staging
        def test_python_present(host):
            assert host.exists("python3") or host.exists("python")
            assert host.run("true").rc == 0
        """
    )
    result = pytester.runpytest("--env=staging", "--promotion-report=decision.json", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*test_python_present?local* PASSED*"])
    assert read_report()["decision"] == "promote"


def test_probe_check_records_into_the_gate(pytester: pytest.Pytester, read_report) -> None:
    closed = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        pytester.makepyfile(
            f"""
            import pytest
            @pytest.mark.staging
            def test_up(probe):
                probe.check("tcp", "127.0.0.1:{port}")
            @pytest.mark.staging
            def test_down(probe):
                probe.check("tcp", "127.0.0.1:{closed}", timeout=1)
            """
        )
        result = pytester.runpytest("--env=staging", "--promotion-report=decision.json")
    assert result.ret == 1
    report = read_report()
    gates = {g["id"].split("::")[-1]: g for g in report["gates"]}
    assert gates["test_up"]["measured"].endswith("ms")
    assert "refused" in gates["test_down"]["message"]
    # a failing health probe makes its gate a rollback trigger
    assert report["decision"] == "rollback"


def test_probe_unknown_kind_or_key_is_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.dev
        def test_k(probe):
            probe.check("tcp", "127.0.0.1:1", expect_status=200)
        """
    )
    result = pytester.runpytest("--env=dev")
    result.stdout.fnmatch_lines(["*probe tcp: unknown key 'expect_status'*"])


def test_promotion_env_without_env_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(promotion_env):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*promotion_env needs a target environment: run pytest with --env NAME*"]
    )


def test_gate_measure_with_a_bound_that_is_not_a_number_fails(
    pytester: pytest.Pytester, read_report
) -> None:
    # min=nan passed (nothing compares with NaN); min="60" was a TypeError traceback.
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.dev
        def test_nan(gate):
            gate.measure(10, min=float("nan"), unit="%")
        def test_text(gate):
            gate.measure(10, max="60")
        """
    )
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    assert result.ret == 1
    assert "Traceback" not in result.stdout.str()
    report = read_report()
    messages = {g["id"].split("::")[-1]: g["message"] for g in report["gates"]}
    prefix = "test_gate_measure_with_a_bound_that_is_not_a_number_fails.py::"
    assert messages == {
        "test_nan": f"{prefix}test_nan: min=nan is not a finite number",
        "test_text": f"{prefix}test_text: max='60' is not a finite number",
    }
    assert report["decision"] == "block"


def test_a_failure_the_test_caught_still_fails_the_gate(
    pytester: pytest.Pytester, read_report
) -> None:
    # The test swallowed the failure and passed; what the gate recorded still counts.
    pytester.makepyfile(
        f"""
        import contextlib, pytest
        pytestmark = pytest.mark.dev
        def test_measured(gate):
            with contextlib.suppress(BaseException):
                gate.measure(50, min=60, unit="%")
        def test_probed(probe):
            with contextlib.suppress(BaseException):
                probe.check("tcp", "127.0.0.1:{free_port()}", timeout=1)
        """
    )
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    result.assert_outcomes(passed=2)  # what pytest saw
    assert result.ret == 1
    report = read_report()
    gates = {g["id"].split("::")[-1]: g for g in report["gates"]}
    assert gates["test_measured"]["outcome"] == "failed"
    assert gates["test_measured"]["message"] == (
        "test_a_failure_the_test_caught_still_fails_the_gate.py::test_measured: 50 % < 60 % "
        "(recorded by the gate; the test went on and passed)"
    )
    assert gates["test_probed"]["outcome"] == "failed"
    assert "connection refused by 127.0.0.1:" in gates["test_probed"]["message"]
    assert report["decision"] == "rollback"  # a failed health probe is a rollback trigger


def test_gate_measure_without_data_blocks(pytester: pytest.Pytester, read_report) -> None:
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.dev
        def test_cov(gate):
            gate.measure(float("nan"), threshold=60, unit="%")
        def test_lat(gate):
            gate.measure(None, threshold="<= 500 ms")
        @pytest.mark.gate(trigger="rollback")
        def test_inf(gate):
            gate.measure(float("inf"), max=500, unit="ms")
        def test_text(gate):
            gate.measure("n/a", min=60)
        def test_empty(gate):
            gate.measure("")
        def test_version(gate):
            gate.measure("1.2.3", threshold="== 1.2.3")
        """
    )
    result = pytester.runpytest("--env=dev", "--promotion-report=decision.json")
    assert result.ret == 1
    report = read_report()
    gates = {g["id"].split("::")[-1]: g for g in report["gates"]}
    assert {k: g["message"] for k, g in gates.items() if g["outcome"] == "failed"} == {
        "test_cov": "test_gate_measure_without_data_blocks.py::test_cov: no data (nan) "
        "to compare with 60 %",
        "test_lat": "test_gate_measure_without_data_blocks.py::test_lat: no data (None) "
        "to compare with <= 500 ms",
        "test_inf": "test_gate_measure_without_data_blocks.py::test_inf: no data (inf) "
        "to compare with <= 500 ms",
        "test_text": "test_gate_measure_without_data_blocks.py::test_text: not a number ('n/a') "
        "to compare with >= 60",
        "test_empty": "test_gate_measure_without_data_blocks.py::test_empty: no data ('')",
    }
    assert gates["test_version"]["outcome"] == "passed"
    assert gates["test_cov"]["measured"] is None
    # no data is a block, even for a gate whose failures are rollback triggers
    assert report["decision"] == "block"
    assert not any(g["rollback_trigger"] for g in report["gates"])
