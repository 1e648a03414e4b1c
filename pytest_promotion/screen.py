"""The last net under every channel of a gate run: what reaches the terminal, a log file
or pytest's ``--debug`` file is masked on its way out (a plugin of its own, loaded by
``plugin.py``; nothing here decides anything).

The reports themselves are masked where they are made (``outputs.py``); this catches
text that never becomes a report: a gate's ``print`` under ``-s`` or
``--capture=tee-sys``, live logging (``--log-cli-level``), ``--log-file``, the hook calls
``--debug`` writes, an ``INTERNALERROR`` traceback. ``sys.stdout`` and ``sys.stderr``
are wrapped before pytest's capture starts (so that what capture restores, and what the
terminal reporter is given, is the wrapper), every log record is masked when it is made,
and the ``--debug`` writer is wrapped at configure time. Writes to the file descriptors
themselves (a subprocess under ``-s``) are not seen here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Generator
from typing import Any, TextIO

import pytest

from .redact import redact

__all__ = ["MaskedStream"]


def __dir__() -> list[str]:
    """Its hooks only: pytest probes every name a plugin lists for a fixture (role.py)."""
    return [name for name in globals() if name.startswith("pytest_")]


HOLD_CAP = 1 << 20  # bytes of output held back at most while the secrets are not known


class _Secrets:
    """The run's secrets, once its environment is resolved (none before). From configure
    until then, in a gate run, what is written is held back (a conftest's
    ``pytest_configure`` that warns with a secret runs before the environment is read)."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._values: tuple[str, ...] | None = None
        self.holding = False
        self._held: list[tuple[TextIO, str]] = []
        self._held_size = 0
        self._dropped = 0
        self.streams: list[MaskedStream] = []

    def hold(self, stream: TextIO, text: str) -> None:
        if self._held_size + len(text) > HOLD_CAP:
            self._dropped += len(text)
            return
        self._held.append((stream, text))
        self._held_size += len(text)

    def release(self) -> None:
        """Write what was held back, masked with what is known now."""
        self.holding = False
        held, self._held, self._held_size = self._held, [], 0
        for stream, text in held:
            stream.write(self.mask(text))
        if self._dropped and held:
            held[-1][0].write(
                f"promotion: {self._dropped} characters of output written before the "
                "environment was resolved were dropped\n"
            )
        for stream in {id(s): s for s, _ in held}.values():
            stream.flush()
        if not self() and self._values is not None:  # the run is known, with no secret
            self.pass_through()

    def pass_through(self) -> None:
        """Nothing to mask (a run without secrets, or no gate run at all): every write
        goes straight to the wrapped stream, with no call of ours in between."""
        self._values = ()
        for stream in self.streams:
            stream.pass_through()

    def __call__(self) -> tuple[str, ...]:
        if self._values is None:
            from .keys import RUN_KEY

            run = self._config.stash.get(RUN_KEY, None)
            if run is None:
                return ()
            self._values = tuple(run.environment.secrets)
        return self._values

    def mask(self, text: str) -> str:
        secrets = self()
        return redact(text, secrets) if secrets else text


class MaskedStream:
    """A text stream whose writes are masked; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO, secrets: _Secrets) -> None:
        self._stream = stream
        self._secrets = secrets
        secrets.streams.append(self)

    def pass_through(self) -> None:
        # An instance attribute shadows the method: the terminal writes once per gate.
        self.write = self._stream.write  # type: ignore[method-assign,assignment]
        self.flush = self._stream.flush  # else __getattr__, a call of ours per flush

    def write(self, text: str) -> int:
        if self._secrets.holding and isinstance(text, str):
            self._secrets.hold(self._stream, text)
        else:
            self._stream.write(self._secrets.mask(text) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _masked_records(secrets: _Secrets) -> Callable[[], None]:
    """Mask every log record when it is made (live logging, ``--log-file``, caplog, the
    captured log), its traceback included; returns the undo."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if secrets():
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: logging reports it as it always does
                return record
            masked = secrets.mask(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                record.exc_text = secrets.mask(logging.Formatter().formatException(record.exc_info))
            if record.stack_info:
                record.stack_info = secrets.mask(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    """Before capture starts (its wrapper runs inside this one): wrap the streams."""
    secrets = _Secrets(early_config)
    wrapped = {name: getattr(sys, name) for name in ("stdout", "stderr")}
    for name, stream in wrapped.items():
        setattr(sys, name, MaskedStream(stream, secrets))
    undo_records = _masked_records(secrets)

    def restore() -> None:  # registered first: runs after capture has restored ours
        secrets.release()
        undo_records()
        for name, stream in wrapped.items():
            if isinstance(getattr(sys, name), MaskedStream):
                setattr(sys, name, stream)

    early_config.add_cleanup(restore)
    early_config.stash[_SECRETS_KEY] = secrets
    return (yield)


_SECRETS_KEY = pytest.StashKey[_Secrets]()


def pytest_plugin_registered(plugin: object, plugin_name: str, manager: Any) -> None:
    """The gate run's session is registered: its secrets are known."""
    # Registered once the run's config is read: the selector (a gate run), the plan.
    if plugin_name in ("promotion-selector", "promotion-plan"):
        run = getattr(plugin, "run", None)
        config = getattr(run if run is not None else plugin, "config", None)
        secrets = config.stash.get(_SECRETS_KEY, None) if config is not None else None
        if secrets is not None:
            secrets.release()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Hold output back until the environment is resolved, in a gate run; and wrap the
    ``--debug`` writer (pytest writes every hook call, with its arguments, to that file)."""
    from .plugin import _requested_env

    secrets = config.stash.get(_SECRETS_KEY, None)
    if secrets is not None:
        if _requested_env(config)[0] is not None:
            secrets.holding = True
        else:  # no target environment, no secrets: nothing to mask in this run
            secrets.pass_through()
    root = getattr(config.trace, "root", None)
    writer = getattr(root, "_writer", None)  # pluggy's TagTracer has no public getter
    if secrets is not None and root is not None and writer is not None:
        root.setwriter(lambda text: writer(secrets.mask(text)))
