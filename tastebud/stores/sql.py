"""SQL written once per store, the dialect chosen per backend.

The stores of plain rows (catalog, API keys, dead letters, push state, job history) run the
same statements on SQLite and PostgreSQL. Each writes its SQL once: ``?`` placeholders in
statements, ``{real}``, ``{json}``... type words in its DDL. A ``Dialect`` turns them into
what its backend takes and adapts the few values the two hold differently (JSON, lists of
text, timestamps, booleans); a ``SqlBackend`` gives the store transactions on it. SQLite
(3.35 and later) takes ``RETURNING`` and ``ON CONFLICT`` as PostgreSQL does, so those are
written once too.

Why not SQLAlchemy Core, the field's tool (installed with Optuna): its engine would replace
the plumbing the stores are built on and measured with, the per-thread SQLite connections
whose writers queue on an ``flock`` (``stores/sqlite.py``) and the psycopg pool whose
transactions carry a request's budget, statement timeout and circuit breaker
(``stores/postgres.py``), and the error mapping of both (``StoreDataError`` against
``StoreUnavailable``). Used only to compile statements for those connections, it would
compile at every call (its compiled cache lives in its own ``Connection``), and it would
still not choose the column types these tables already have in deployed databases. What
differs between the backends is small and listed here: the placeholder, a few column types,
``= ANY(array)`` against chunked ``IN`` lists, locks and the clock; what differs for one
store only stays in that store (the catalog's ``Spelling``).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, closing
from datetime import UTC, datetime
from typing import Any

from tastebud.stores.errors import Closeable

# What a ``{name}`` in a store's DDL becomes: SQLite's words first, PostgreSQL's second.
TYPES = {
    "identity": (
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    ),
    "bigint": ("INTEGER", "BIGINT"),
    "boolean": ("INTEGER", "BOOLEAN"),
    "true": ("1", "TRUE"),
    "empty_list": ("'[]'", "'{}'"),
    "real": ("REAL", "DOUBLE PRECISION"),
    "json": ("TEXT", "JSONB"),
    "text_list": ("TEXT", "TEXT[]"),
    "timestamp": ("TEXT", "TIMESTAMPTZ"),
}


def dumps(value: Any) -> str:
    """JSON text as the stores have always written it (sorted keys; dates as text)."""
    return json.dumps(value, sort_keys=True, default=str)


plain = json.dumps  # a name the ``Dialect.json`` method does not hide


class Dialect:
    """SQLite's way of saying things; ``PostgresDialect`` (``stores/postgres.py``) overrides
    what PostgreSQL says otherwise."""

    name = "sqlite"
    column = 0  # which of each ``TYPES`` pair
    for_update = ""  # SQLite's write transaction already holds the whole database
    chunk = 500  # values per ``IN`` list, under SQLite's limit on parameters

    def ddl(self, schema: str, **names: str) -> str:
        """A store's DDL with its type words (and any ``names``, such as a table) filled in."""
        words = {word: pair[self.column] for word, pair in TYPES.items()}
        return schema.format(**words, **names)

    def sql(self, text: str) -> str:
        """A statement written with ``?`` placeholders, as this backend takes it."""
        return text

    def json(self, value: Any, encode: Callable[[Any], str] = dumps) -> Any:
        """The parameter for a ``{json}`` column (``encode``: how SQLite's text is written)."""
        return None if value is None else encode(value)

    def text_list(self, values: Sequence[str], encode: Callable[[Any], str] = plain) -> Any:
        """The parameter for a ``{text_list}`` column."""
        return encode(list(values))

    def boolean(self, value: bool) -> Any:
        """The parameter for a ``{boolean}`` column."""
        return int(value)

    def timestamp(self, moment: datetime) -> Any:
        """The parameter for a ``{timestamp}`` column: fixed-width UTC text, so text order
        is time order."""
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    def any_of(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """``column`` among ``values``: a condition and its parameters, as many as it takes."""
        for start in range(0, len(values), self.chunk):
            chunk = list(values[start : start + self.chunk])
            yield f"{column} IN ({','.join('?' * len(chunk))})", chunk

    def lock(self, sql: Sql, key: int) -> None:
        """Serialize writers on ``key`` until the transaction ends. SQLite's write
        transaction already excludes every other writer."""

    def clock(self, sql: Sql) -> float:
        """The database's time (epoch seconds) for a watermark read before the reads that
        follow. SQLite has no server clock: the process's, read now."""
        return time.time()


def loads(value: Any) -> Any:
    """A ``{json}`` or ``{text_list}`` value as read: SQLite gives text, PostgreSQL the value."""
    return json.loads(value) if isinstance(value, str) else value


class Sql:
    """A connection inside a transaction, taking statements written with ``?``."""

    __slots__ = ("_connection", "_convert")

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection
        self._convert = dialect.sql

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the driver's cursor (``fetchone``, ``fetchall``, ``rowcount``)."""
        return self._connection.execute(self._convert(text), params)

    def one(self, text: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self.execute(text, params).fetchone()  # type: ignore[no-any-return]

    def all(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.execute(text, params).fetchall()  # type: ignore[no-any-return]

    def many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for each of ``rows`` (psycopg pipelines them: one round trip)."""
        with closing(self._connection.cursor()) as cursor:
            cursor.executemany(self._convert(text), rows)


class SqlBackend(Closeable, ABC):
    """A database the SQL stores run on: its dialect, schemas and transactions."""

    dialect: Dialect

    @abstractmethod
    def apply_schema(self, name: str, ddl: str) -> None:
        """Create what ``ddl`` (with type words) describes, if it is not there yet."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Sql]:
        """One write transaction, committed on success; a refusal of the data raises
        ``StoreDataError``, an outage ``StoreUnavailable``."""

    @abstractmethod
    def read(self, *, short: bool = True) -> AbstractContextManager[Sql]:
        """Reads. On a server's request path a ``short`` read runs under the read budget
        (``budgets.database_ms``); a listing passes False for the write budget."""


def where(conditions: Sequence[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """`` WHERE`` and the conditions (each written with one ``?``) whose value is not None,
    with their parameters; empty when none is."""
    clauses = [(condition, value) for condition, value in conditions if value is not None]
    if not clauses:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in clauses), [v for _, v in clauses]
