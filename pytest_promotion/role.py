"""The base of the plugin objects a gate run registers (docs/architecture.md, "Roles").

pytest scans every name ``dir()`` lists of every registered plugin for fixtures: about
35 k instructions a name (it probes each for ``_mock_name`` and ``__wrapped__``), and an
instance lists object's two dozen dunders besides its own methods. A role lists only its
hook implementations, which is all pluggy (hooks) and pytest (fixtures: a role has none)
look for: about 1.5 M instructions less per role and run.
"""

from __future__ import annotations

__all__ = ["Role"]

_HOOK_NAMES: dict[type, tuple[str, ...]] = {}  # a role class -> its hook implementations


def _hook_names(cls: type) -> tuple[str, ...]:
    names = _HOOK_NAMES.get(cls)
    if names is None:
        found = {
            name for klass in cls.__mro__ for name in vars(klass) if name.startswith("pytest_")
        }
        names = _HOOK_NAMES[cls] = tuple(sorted(found))
    return names


class Role:
    """A plugin object of a gate run: ``dir()`` lists its hook implementations only."""

    def __dir__(self) -> list[str]:
        return list(_hook_names(type(self)))
