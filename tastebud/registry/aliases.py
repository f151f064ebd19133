"""Aliases (``production``, ``canary``, ``shadow``) and their history, kept in one small JSON
document. Every change is a read-modify-write under a lock, written atomically."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field

from tastebud.registry.errors import UnknownAlias
from tastebud.registry.names import ALIASES

try:  # POSIX only; elsewhere local stores get the in-process lock alone.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ALIASES_NAME = "aliases.json"
LOCK_NAME = ".aliases.lock"
# Enough to audit months of promotions and roll back far, small enough to rewrite each time.
HISTORY_LIMIT = 100
T = TypeVar("T")


def check_alias(name: str) -> str:
    if name not in ALIASES:
        raise UnknownAlias(f"unknown alias {name!r}: use one of {', '.join(ALIASES)}")
    return name


Action = Literal["promote", "rollback", "retire"]


class AliasEvent(BaseModel):
    """One change of an alias. ``retire`` leaves the alias pointing nowhere (a canary rolled
    back); ``reason`` says why when the caller said (a rollout's guardrail breach)."""

    action: Action
    version: str
    replaced: str | None = None
    reason: str = ""
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class AliasState(BaseModel):
    """Where one alias points, the versions ``rollback`` returns to (most recent last), and
    every change (an audit trail, oldest first)."""

    version: str | None = None
    previous: list[str] = Field(default_factory=list)
    history: list[AliasEvent] = Field(default_factory=list)

    def promote(self, version: str, reason: str = "") -> None:
        if self.version is not None:
            self.previous.append(self.version)
        self._record("promote", version, reason)

    def retire(self, reason: str) -> None:
        """Point nowhere, recording the version left and why."""
        if self.version is None:
            return
        self._record("retire", self.version, reason)
        self.version = None

    def rollback(self) -> str:
        target = self.previous.pop()
        self._record("rollback", target)
        return target

    def _record(self, action: Action, version: str, reason: str = "") -> None:
        self.history.append(
            AliasEvent(action=action, version=version, replaced=self.version, reason=reason)
        )
        self.version = version
        del self.previous[:-HISTORY_LIMIT]
        del self.history[:-HISTORY_LIMIT]


class AliasBook(BaseModel):
    """The content of ``aliases.json``."""

    format: Literal[1] = 1
    aliases: dict[str, AliasState] = Field(default_factory=dict)

    def state(self, alias: str) -> AliasState:
        return self.aliases.setdefault(check_alias(alias), AliasState())

    def current(self) -> dict[str, str]:
        return {name: state.version for name, state in self.aliases.items() if state.version}

    def protected(self, last: int) -> set[str]:
        """Versions an alias points to or has among its last ``last`` history entries or
        rollback targets: garbage collection never deletes them."""
        keep: set[str] = set(self.current().values())
        for state in self.aliases.values():
            keep.update(_tail(state.previous, last))
            keep.update(event.version for event in _tail(state.history, last))
            keep.update(event.replaced for event in _tail(state.history, last) if event.replaced)
        return keep


def _tail(items: Sequence[T], count: int) -> Sequence[T]:
    return items[len(items) - count :] if count > 0 else ()


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def alias_lock(key: str, lock_file: Path | None) -> Iterator[None]:
    """Exclusive access to one registry's aliases: a thread lock per registry within this
    process and, for a local store, ``flock`` on a file beside ``aliases.json`` across
    processes. Remote stores have no cross-process lock (see docs/registry.md)."""
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.Lock())
    with thread_lock:
        if lock_file is None or fcntl is None:
            yield
            return
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_file, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
