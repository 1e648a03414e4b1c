"""The one table of check kinds: built-in ones, entry points, and kinds added by a hook.

A kind is loaded (its module imported) only when it is used, and checked against the
:class:`~.base.CheckKind` contract then: a third-party kind that does not fit is a config
error naming where it came from, never a traceback in the middle of a run.
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .base import CheckConfigError, Outcome, Target

__all__ = ["BUILTIN_PLACEHOLDERS", "ENTRY_POINT_GROUP", "Kind", "KindRegistry", "registry"]

ENTRY_POINT_GROUP = "pytest_promotion.kinds"
# Placeholders every environment has, besides its services: {env}, {base_url}, {python}.
BUILTIN_PLACEHOLDERS = ("env", "base_url", "python")
# Keys every check may carry: a kind cannot take one of these names.
_RESERVED = frozenset(
    {"name", "timeout", "trigger", "wait", "consecutive_successes", "description", "from"}
    | {"environments", "public", *BUILTIN_PLACEHOLDERS}
    # environment keys: a service kind's name becomes one
    | {"ca_bundle", "insecure", "dotenv", "rollback", "rollback_timeout", "allow_waivers"}
    | {"allow_skips", "hosts", "vars", "checks"}
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class Kind:
    """A loaded kind, with the contract's defaults filled in (``CONCURRENT = False``, no
    ``prepare``): what the rest of the package calls. Satisfies :class:`CheckKind`."""

    def __init__(self, name: str, implementation: Any, source: str, builtin: bool) -> None:
        self.name, self.implementation, self.source, self.builtin = (
            name,
            implementation,
            source,
            builtin,
        )
        keys = getattr(implementation, "KEYS", None)
        rollback = getattr(implementation, "ROLLBACK", None)
        problem = None
        if not isinstance(keys, Mapping) or name not in keys:
            problem = f"KEYS: expected a mapping of key -> type naming {name!r}, found {keys!r}"
        elif not isinstance(rollback, bool):
            problem = f"ROLLBACK: expected true or false, found {rollback!r}"
        elif not callable(getattr(implementation, "run", None)):
            problem = "run: expected a function run(spec, target) -> Outcome, found none"
        if problem is not None:
            raise CheckConfigError(f"check kind {name!r} ({source}): {problem}")
        self.KEYS: Mapping[str, type | tuple[type, ...]] = keys  # type: ignore[assignment]
        self.ROLLBACK: bool = rollback  # type: ignore[assignment]
        self.CONCURRENT: bool = bool(getattr(implementation, "CONCURRENT", False))

    # Looked up on each call, not kept: a test (or a debugger) may replace a module's run.
    def validate(self, spec: Mapping[str, Any], where: str) -> None:
        validate = getattr(self.implementation, "validate", None)
        if validate is not None:
            validate(spec, where)

    def prepare(self) -> None:
        prepare = getattr(self.implementation, "prepare", None)
        if prepare is not None:
            prepare()

    def run(self, spec: Mapping[str, Any], target: Target) -> Outcome:
        outcome: Outcome = self.implementation.run(spec, target)
        return outcome

    def __repr__(self) -> str:
        return f"<check kind {self.name!r} from {self.source}>"


class _Entry:
    """How to load one kind (a plain class: a dataclass costs start-up)."""

    __slots__ = ("builtin", "kind", "load", "name", "service", "source")

    def __init__(
        self, *, name: str, source: str, load: Callable[[], Any], service: bool, builtin: bool
    ) -> None:
        self.name, self.source, self.load = name, source, load
        self.service, self.builtin = service, builtin
        self.kind: Kind | None = None


class KindRegistry:
    """Kind name -> how to load it, whether it is a service (an environment key and a
    ``{placeholder}``), and where it came from."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._entry_points_read = False
        self._lock = threading.RLock()

    # -- filling it -----------------------------------------------------------------------
    def add_builtins(self, package: str, table: Mapping[str, str], services: Iterable[str]) -> None:
        """The built-in kinds: ``name -> module`` under ``package``."""
        services = set(services)
        for name, module in table.items():
            self._entries[name] = _Entry(
                name=name,
                source="built-in",
                load=functools.partial(importlib.import_module, f"{package}.{module}"),
                service=name in services,
                builtin=True,
            )

    def add(
        self, name: str, kind: Any, *, source: str = "a plugin", service: bool | None = None
    ) -> Callable[[], None]:
        """Add a kind (a module or an object with the :class:`CheckKind` names) and return
        the function that removes it again. ``service`` (default: the kind's ``SERVICE``
        attribute) makes ``name`` an environment key and a ``{placeholder}`` too."""
        self._check_name(name, source)
        if service is None:
            service = bool(getattr(kind, "SERVICE", False))
        with self._lock:
            self._entries[name] = _Entry(
                name=name, source=source, load=lambda: kind, service=service, builtin=False
            )

        def remove() -> None:
            with self._lock:
                entry = self._entries.get(name)
                if entry is not None and entry.source == source and not entry.builtin:
                    del self._entries[name]

        return remove

    def add_from_hook(self, config: Any) -> Callable[[], None]:
        """Ask ``pytest_promotion_add_kinds`` (every implementation) for kinds; return the
        function that removes them (``config.add_cleanup`` it)."""
        removers: list[Callable[[], None]] = []
        for answer in config.hook.pytest_promotion_add_kinds(config=config) or []:
            for name, kind in (answer or {}).items():
                removers.append(self.add(name, kind, source="hook pytest_promotion_add_kinds"))

        def remove_all() -> None:
            for remove in removers:
                remove()

        return remove_all

    def _check_name(self, name: str, source: str) -> None:
        if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
            raise CheckConfigError(
                f"check kind {name!r} ({source}): expected a lower-case name "
                "(letters, digits, '_') that is not a common check key"
            )
        entry = self._entries.get(name)
        if entry is not None and entry.builtin:
            raise CheckConfigError(
                f"check kind {name!r} ({source}): the name of a built-in kind; choose another"
            )

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        from importlib.metadata import entry_points

        with self._lock:
            if self._entry_points_read:
                return
            found = entry_points(group=ENTRY_POINT_GROUP)
            for ep in sorted(found, key=lambda e: e.name):
                dist = getattr(ep, "dist", None)
                origin = f" in {dist.name} {dist.version}" if dist is not None else ""
                source = f"entry point {ep.name} = {ep.value}{origin}"
                self._check_name(ep.name, source)
                if ep.name in self._entries:  # two packages, one name: neither is chosen
                    raise CheckConfigError(
                        f"check kind {ep.name!r} ({source}): also added by "
                        f"{self._entries[ep.name].source}"
                    )
                self._entries[ep.name] = _Entry(
                    name=ep.name, source=source, load=ep.load, service=False, builtin=False
                )
            self._entry_points_read = True

    # -- reading it -----------------------------------------------------------------------
    # The entry points are read only when a name is not known otherwise: scanning every
    # installed distribution's metadata costs a gate run with built-in kinds ~3 ms.
    def names(self) -> tuple[str, ...]:
        """Every kind's name, built-in ones first."""
        self._read_entry_points()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name not in self._entries:
            self._read_entry_points()
        return name in self._entries

    def kinds_in(self, keys: Iterable[str]) -> list[str]:
        """The keys that name a kind (a check must have exactly one)."""
        keys = list(keys)
        found = [k for k in keys if k in self._entries]
        if not found and not self._entry_points_read:
            self._read_entry_points()
            found = [k for k in keys if k in self._entries]
        return found

    def services(self) -> tuple[str, ...]:
        """The kinds whose name is also an environment key (``redis = "redis://..."``);
        built-in or added by the hook (an entry point's kind is never one)."""
        return tuple(e.name for e in self._entries.values() if e.service)

    def placeholders(self) -> tuple[str, ...]:
        """What ``{name}`` may stand for in a check: ``env``, ``base_url``, ``python`` and
        every service."""
        return (*BUILTIN_PLACEHOLDERS, *self.services())

    def get(self, name: str) -> Kind:
        """The kind ``name``, loaded and checked against the contract on first use."""
        entry = self._entries.get(name)
        if entry is None and not self._entry_points_read:
            self._read_entry_points()
            entry = self._entries.get(name)
        if entry is None:
            raise CheckConfigError(
                f"unknown check kind {name!r} (known: {', '.join(self._entries)})"
            )
        if entry.kind is None:
            with self._lock:
                if entry.kind is None:
                    entry.kind = Kind(name, self._load(entry), entry.source, entry.builtin)
        return entry.kind

    @staticmethod
    def _load(entry: _Entry) -> Any:
        if entry.builtin:
            return entry.load()  # ours: an ImportError here is a bug, shown as one
        try:
            return entry.load()
        except Exception as exc:
            raise CheckConfigError(
                f"check kind {entry.name!r} ({entry.source}): cannot load: "
                f"{type(exc).__name__}: {exc}"
            ) from None


registry = KindRegistry()
