"""Policy check keys are validated like every check's: one line naming file, table, key."""

from __future__ import annotations

import pytest

from tests.ledger.conftest import Project

BASE = '[promotion]\nenvironments = ["dev", "staging", "prod"]\n\n[[environments.prod.checks]]\nname = "p"\n'


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("approvals = 0", "key 'approvals': expected an integer >= 1, found 0"),
        ("approval = false", "key 'approval': expected true, found False"),
        ("approval = true\napprovals = 2", "expected exactly one check kind"),
        (
            'requires_previous = true\nsoak = "forever"',
            "key 'soak': expected a duration like 90m, 24h or 7d, found 'forever'",
        ),
        ('approval = true\nsoak = "1h"', "key 'soak' does not apply to approval checks"),
        (
            "requires_previous = false",
            "key 'requires_previous': expected true, \"all\" or a list of environments, found False",
        ),
        (
            'version_pattern = "("',
            "key 'version_pattern': expected \"semver\" or a regular expression, found '('",
        ),
        ("no_downgrade = 1", "key 'no_downgrade': expected bool, found int 1"),
    ],
)
def test_a_policy_key_mistake_is_one_line(project: Project, keys: str, message: str) -> None:
    project.config(BASE + keys + "\n")
    code, _, err = project.cli("validate")
    assert code == 4
    assert err.startswith("ERROR: promotion.toml: [[environments.prod.checks]] 'p': ")
    assert message in err
    assert len(err.splitlines()) == 1
