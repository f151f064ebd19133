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


def is_transient(error: BaseException) -> bool:
    """Whether a retry of the same call may succeed: the store was unavailable (what
    ``StoreUnavailable`` says), as opposed to a permanent refusal or a programming error."""
    return isinstance(error, StoreUnavailable)
