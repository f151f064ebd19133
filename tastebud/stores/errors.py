"""What every store shares and nothing heavy: the error classes and ``Closeable``.

Apart from ``base.py`` (which imports pyarrow for the event interfaces) so that the light
commands (``tastebud keys``, ``dlq``, ``models``) and the artifact and gateway stores can use
them without paying for pyarrow at start-up (docs/benchmarks.md, CLI start-up).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closeable:
    """Something holding connections: close it, or use it in a ``with`` block."""

    def close(self) -> None:
        """Release connections; the default has none."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StoreError(RuntimeError):
    """A store could not do what was asked (unreachable, corrupt, misconfigured)."""


class StoreUnavailable(StoreError):
    """A transient failure: the caller may retry (server down, lock held too long)."""


class StoreDataError(StoreError):
    """A permanent failure: the store answered and refused the data itself (a value it
    cannot hold, a broken constraint). Retrying cannot help: reject or dead-letter it."""


# SQLSTATE classes of a refusal of the data: 22 data exception (NUL in text, a value out of
# range, untranslatable characters), 23 integrity constraint violation.
PERMANENT_SQLSTATE_CLASSES = ("22", "23")
# The DB-API exception classes that say the same, in sqlite3 and psycopg (an
# ``OperationalError`` -- locked, busy, disk I/O, connection lost -- is availability).
PERMANENT_DBAPI_ERRORS = frozenset({"DataError", "IntegrityError"})


def is_permanent(error: BaseException) -> bool:
    """Whether ``error`` says the data was refused (retrying the same data cannot help),
    rather than that a store was unavailable. The one place this is decided: the stores
    raise ``StoreDataError`` from it, and the gateway and ``dlq retry`` never retry such an
    error as an outage. Duck-typed on ``sqlstate`` and the sqlite3 class names so this
    module imports neither driver."""
    if isinstance(error, StoreDataError):
        return True
    if isinstance(error, StoreError):
        return False
    if isinstance(error, UnicodeError):  # a lone surrogate met a UTF-8 encoder
        return True
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str) and state:
        return state.startswith(PERMANENT_SQLSTATE_CLASSES)
    # Refused before the server saw it (psycopg finds the NUL itself), or by SQLite: the
    # DB-API classes say so.
    return any(
        kind.__name__ in PERMANENT_DBAPI_ERRORS
        and (kind.__module__ == "sqlite3" or kind.__module__.startswith("psycopg"))
        for kind in type(error).__mro__
    )


class TransientError(RuntimeError):
    """Raise (a subclass of) this when trying the same call again may succeed: a job's
    ``TransientJobError`` is one."""


# Drivers' connection-level errors, matched by class name so this module imports no driver:
# sqlite3's and psycopg's ``OperationalError`` (locked, busy, connection lost),
# ``InterfaceError`` (a closed connection), psycopg_pool's ``PoolTimeout``.
TRANSIENT_DRIVER_ERRORS = frozenset({"OperationalError", "InterfaceError", "PoolTimeout"})
# httpx's errors of the network, not of the request: connect/read timeouts, a connection
# refused or reset, a server that closed the connection mid-answer (a restart). Not its
# ``UnsupportedProtocol`` or ``LocalProtocolError``: retrying a bad URL cannot help.
TRANSIENT_HTTP_ERRORS = frozenset({"TimeoutException", "NetworkError", "RemoteProtocolError"})


def is_transient(error: BaseException) -> bool:
    """Whether a retry of the same call may succeed: the one rule every retry in tastebud
    follows (``stores.retry``). Transient: a store was unavailable (``StoreUnavailable``), a
    ``TransientError``, a network error (``ConnectionError``, ``TimeoutError``, httpx's
    network errors) or a driver's connection error. Never a permanent refusal of the data
    (``is_permanent``), another store error or a programming error."""
    if is_permanent(error):
        return False
    if isinstance(error, StoreUnavailable | TransientError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, StoreError):
        return False
    for kind in type(error).__mro__:
        if kind.__name__ in TRANSIENT_DRIVER_ERRORS:
            return True
        if kind.__name__ in TRANSIENT_HTTP_ERRORS and kind.__module__.startswith("httpx"):
            return True
    return False
