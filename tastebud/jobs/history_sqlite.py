"""The embedded run history: ``jobs.db`` (SQLite, WAL) beside the event store, and job
locks with ``flock`` on files under ``locks/`` (released by the kernel if the holder dies).
The SQL is ``RunHistory``'s, shared with PostgreSQL; only the locks are SQLite's own."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tastebud.jobs.base import JobAlreadyRunning
from tastebud.jobs.history import RunHistory


class SqliteRunHistory(RunHistory):
    """The embedded default: ``jobs.db`` and ``locks/`` under the embedded database folder."""

    def __init__(self, root: Path) -> None:
        # lazy: sqlite3 loads for an embedded URL only (start-up)
        from tastebud.stores.sqlite import SqliteBackend, SqliteDatabase

        self.root = root
        super().__init__(SqliteBackend(SqliteDatabase(root / "jobs.db")), "job_runs")
        self._lock_dir = root / "locks"
        self._lock_dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        path = self._lock_dir / f"{hashlib.blake2b(name.encode(), digest_size=8).hexdigest()}.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise JobAlreadyRunning(
                    f"{name} is already running (lock {path} is held by another process)"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)
