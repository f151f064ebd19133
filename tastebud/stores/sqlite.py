"""SQLite plumbing shared by the embedded backends.

WAL mode lets readers in other processes (the API server, a job) run beside one writer;
``synchronous=NORMAL`` in WAL mode keeps every committed transaction across a process crash
(kill -9); only an OS crash or power loss can roll back the last commits.

Writers queue on an ``flock`` of ``<file>.lock`` before ``BEGIN IMMEDIATE``. SQLite's own
busy handler polls: a writer that finds the database locked sleeps 1, 2, 5, 10... ms and
tries again, so two gateway workers appending at once spent much of their time asleep
(measured: docs/benchmarks.md). The kernel wakes an ``flock`` waiter the moment the lock is
released. A process that does not take the lock (another SQLite client) is still safe:
SQLite's locking stays underneath.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from tastebud.stores.errors import StoreDataError, StoreUnavailable, is_permanent
from tastebud.stores.sql import Dialect, Sql, SqlBackend

BUSY_TIMEOUT_MS = 30_000
# Page cache per connection, and there is a connection per thread and file: a server's
# threads multiply it (it was 64 MB; docs/benchmarks.md, "Soak"). SQLite's default is 2 MB.
CACHE_KIB = 8 * 1024


class _Opened:
    """A thread's connection, held by that thread's local storage only, so the connection
    (and its page cache) is closed when the thread ends. The server's thread pool retires
    idle threads and starts new ones under the next burst: while every connection stayed
    listed for ``close``, each new thread added one more, and worker memory grew without
    bound under concurrent load (docs/benchmarks.md, "Soak")."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __del__(self) -> None:
        # Closed here, not left to the garbage collector: a connection and its statement
        # cache refer to each other, so dropping the last reference frees neither.
        self.connection.close()


class SqliteDatabase:
    """One SQLite file opened per thread (sqlite3 connections must not cross threads); a
    thread's connection lives as long as the thread."""

    def __init__(self, path: Path, schema: str = "", *, mmap_bytes: int = 0) -> None:
        self.path = path
        self.mmap_bytes = mmap_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: weakref.WeakSet[_Opened] = weakref.WeakSet()
        self._writer = threading.Lock()  # one writer per process; flock orders processes
        self._lock_path = path.with_name(path.name + ".lock")
        self._lock_file: tuple[int, int] | None = None  # (pid, descriptor)
        if schema:
            # Each statement is idempotent (IF NOT EXISTS / OR IGNORE) and commits by itself;
            # executescript cannot run inside an explicit transaction.
            self.connection().executescript(schema)

    def connection(self) -> sqlite3.Connection:
        opened: _Opened | None = getattr(self._local, "opened", None)
        if opened is None:
            connection = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            connection.execute("PRAGMA foreign_keys=ON")
            if self.mmap_bytes:
                connection.execute(f"PRAGMA mmap_size={int(self.mmap_bytes)}")
            opened = self._local.opened = _Opened(connection)
            with self._lock:
                self._opened.add(opened)
        return opened.connection

    def _lock_descriptor(self) -> int:
        """This process's descriptor of the lock file (reopened in a forked child: a shared
        open file would share the lock)."""
        if self._lock_file is None or self._lock_file[0] != os.getpid():
            descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._lock_file = (os.getpid(), descriptor)
        return self._lock_file[1]

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once (BEGIN IMMEDIATE) so it cannot deadlock later,
        after waiting its turn on the writer lock."""
        connection = self.connection()
        with self._writer:
            descriptor = self._lock_descriptor()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as error:
                    raise StoreUnavailable(f"{self.path}: {error}") from error
                try:
                    yield connection
                except BaseException as error:
                    connection.execute("ROLLBACK")
                    if isinstance(error, sqlite3.Error | UnicodeError) and is_permanent(error):
                        raise StoreDataError(f"{self.path} refused the data: {error}") from error
                    raise
                else:
                    connection.execute("COMMIT")
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot across several statements."""
        connection = self.connection()
        connection.execute("BEGIN")
        try:
            yield connection
        finally:
            connection.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for opened in list(self._opened):
                opened.connection.close()
            self._opened.clear()
        self._local = threading.local()
        if self._lock_file is not None and self._lock_file[0] == os.getpid():
            os.close(self._lock_file[1])
        self._lock_file = None


SQLITE = Dialect()


class SqliteBackend(SqlBackend):
    """A SQLite file for the SQL stores (``stores/sql.py``); closing it closes the file."""

    dialect = SQLITE

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def apply_schema(self, name: str, ddl: str) -> None:
        self.db.connection().executescript(ddl)

    @contextmanager
    def write(self) -> Iterator[Sql]:
        with self.db.write() as connection:
            yield Sql(connection, SQLITE)

    @contextmanager
    def read(self, *, short: bool = True) -> Iterator[Sql]:
        """Each statement on its own (autocommit), as the reads always ran: no BEGIN."""
        yield Sql(self.db.connection(), SQLITE)

    def close(self) -> None:
        self.db.close()


def placeholders(count: int) -> str:
    return ",".join("?" * count)


T = TypeVar("T")


def chunks(values: list[T], size: int = 500) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
