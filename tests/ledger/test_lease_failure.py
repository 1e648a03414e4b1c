"""A lease that could not be taken is not held: the store opens and takes records, but
taking the lease fails (here the run's role may not write the leases table, on a real
PostgreSQL). An environment that needs a record blocks and says so; a middle one without
policy gates promotes with the terminal's warning; each record says the lease was not
taken."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest

from tests.ledger.conftest import Project
from tests.services.conftest import PostgresServer

pytestmark = pytest.mark.integration

CHAIN = """
[promotion]
environments = ["dev", "staging", "prod"]
ledger = "{url}"
lock_timeout = "5s"
"""


def promoter_ledger(server: PostgresServer) -> tuple[str, str]:
    """A database of its own owned by a new role that is not a superuser (a REVOKE does
    not bite a superuser): (the role, its ledger URL)."""
    suffix = os.urandom(4).hex()
    role, password, database = f"promoter_{suffix}", f"Pr0-{suffix}", f"ledger_{suffix}"
    with psycopg.connect(server.url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        conn.execute(f"CREATE DATABASE {database} OWNER {role}")
    url = (
        f"postgresql://{role}:{password}@127.0.0.1:{server.port}/{database}?sslrootcert={server.ca}"
    )
    return role, url


def revoke_lease_writes(server: PostgresServer, url: str, role: str) -> None:
    """The role keeps reading and appending records but can no longer take a lease."""
    database = url.split("?")[0].rsplit("/", 1)[1]
    admin = server.url().replace(f":{server.port}/postgres", f":{server.port}/{database}", 1)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"REVOKE INSERT, UPDATE ON promotion_leases FROM {role}")


@pytest.fixture
def unleasable(project: Project, postgres_server: PostgresServer) -> str:
    """A chain whose ledger takes records but no lease (after a first dev run, which
    creates the tables as the role and promotes with its lease): the role's name."""
    role, url = promoter_ledger(postgres_server)
    project.config(CHAIN.replace("{url}", url))
    first = project.run("dev", "--promotion-version=v1.4.0")
    assert first.ret == 0, first.stdout.str()
    assert "running without the lease" not in first.stdout.str()
    revoke_lease_writes(postgres_server, url, role)
    return role


def lease_of_last_record(project: Project, env: str) -> Any:
    record = project.records()[-1]
    assert record["environment"] == env
    return project.cli_json("show", record["id"])["body"]["lease"]


def test_the_last_environment_blocks_when_its_lease_cannot_be_taken(
    project: Project, unleasable: str
) -> None:
    result = project.run("prod", "--promotion-version=v1.4.0")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "promotion: ledger postgresql://*: *permission denied*: running without the lease",
            "decision: BLOCK v1.4.0 -> prod",
            "*reason: prod's lease was not taken (ledger postgresql://*permission denied*)",
        ]
    )
    assert "Pr0-" not in result.stdout.str()  # the role's password is not shown
    assert lease_of_last_record(project, "prod") == "not taken"


def test_a_middle_environment_promotes_and_records_the_lease_not_taken(
    project: Project, unleasable: str
) -> None:
    """staging has no policy gate and does not end the chain: a record is not needed to
    promote it, so a lease it could not take is the terminal's warning, not a block."""
    result = project.run("staging", "--promotion-version=v1.4.0")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "promotion: ledger postgresql://*: *permission denied*: running without the lease",
            "decision: PROMOTE v1.4.0 -> staging",
        ]
    )
    assert "lease was not taken" not in result.stdout.str()
    assert lease_of_last_record(project, "staging") == "not taken"
