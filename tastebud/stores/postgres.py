"""PostgreSQL plumbing shared by the server backends: one connection pool per URL, migrations
under an advisory lock (several workers may start at once), and errors mapped to store errors.

On a server's request path (``tastebud.stores.budget``) a transaction waits for a pooled
connection at most ``budgets.database_ms``, runs under a statement timeout (``database_ms``
for reads, ``database_write_ms`` for writes) and goes through the database's circuit
breaker, which counts the failures that say the database is out of reach (``unreachable``).
The pool gives up a reconnection attempt after ``RECONNECT_SECONDS`` (psycopg_pool backs off
exponentially, to minutes: after a 20 s outage the next attempt could come 10 s after the
database was back); the next request that finds no connection starts a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from tastebud.stores.budget import CircuitBreaker, current_budget
from tastebud.stores.errors import StoreDataError, StoreUnavailable, is_permanent
from tastebud.stores.sql import Dialect, Sql, SqlBackend, dumps

MIGRATION_LOCK = 0x7A57EB0D  # any constant shared by every tastebud process
RECONNECT_SECONDS = 2.0


def _configure(connection: psycopg.Connection) -> None:
    connection.execute("SET TIME ZONE 'UTC'")
    connection.commit()


class PostgresDatabase:
    """A pool of connections to one database; schemas are applied once per process."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        # Opened inside a request (the feature store opens on first use), the wait for the
        # first connection is the request's budget too.
        budget = current_budget()
        wait = 10.0 if budget is None else budget.settings.database_ms / 1000
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            configure=_configure,
            open=True,
            timeout=10.0,
            reconnect_timeout=RECONNECT_SECONDS,
            name="tastebud",
        )
        try:
            self.pool.wait(timeout=wait)
        except (PoolTimeout, psycopg.OperationalError) as error:
            self.pool.close()
            message = f"PostgreSQL at {_redact(url)} is unreachable: {error}"
            raise StoreUnavailable(message) from error
        self._applied: set[str] = set()
        self.breaker = CircuitBreaker("postgresql")

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[psycopg.Connection]:
        """A connection inside one transaction, committed on success. ``read_only`` picks
        the shorter statement timeout on the request path (the transaction may still write)."""
        budget = current_budget()
        if budget is None:
            try:
                with self.pool.connection() as connection:
                    yield connection
            except (PoolTimeout, psycopg.OperationalError) as error:
                raise StoreUnavailable(f"PostgreSQL: {error}") from error
            except (psycopg.Error, UnicodeError) as error:
                if is_permanent(error):
                    raise StoreDataError(f"PostgreSQL refused the data: {error}") from error
                raise
            return
        self.breaker.admit(budget)
        limits = budget.settings
        timeout_ms = limits.database_ms if read_only else limits.database_write_ms
        try:
            with self.pool.connection(timeout=limits.database_ms / 1000) as connection:
                connection.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
                yield connection
        except (PoolTimeout, psycopg.OperationalError) as error:
            if not unreachable(error):  # a statement timed out: the database answered
                self.breaker.succeeded()
                raise StoreUnavailable(f"PostgreSQL: {error}") from error
            self.breaker.failed(budget, error)
            if isinstance(error, psycopg.OperationalError):
                self.pool.check()  # drop the other connections a restart broke, at once
            raise StoreUnavailable(f"PostgreSQL: {error}") from error
        except (psycopg.Error, UnicodeError) as error:
            self.breaker.succeeded()  # the database answered; the error is the data's
            if is_permanent(error):
                raise StoreDataError(f"PostgreSQL refused the data: {error}") from error
            raise
        except BaseException:
            self.breaker.succeeded()  # the database answered; the error is the caller's
            raise
        self.breaker.succeeded()

    def apply_schema(self, name: str, sql: str) -> None:
        if name in self._applied:
            return
        with self.transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            connection.execute(sql)  # type: ignore[arg-type]
        self._applied.add(name)

    def close(self) -> None:
        self.pool.close()


class PostgresDialect(Dialect):
    """What PostgreSQL says otherwise than SQLite (``stores/sql.py``)."""

    name = "postgresql"
    column = 1
    for_update = " FOR UPDATE"

    def sql(self, text: str) -> str:
        return _pyformat(text)

    def json(self, value: Any, encode: Callable[[Any], str] = dumps) -> Any:
        return None if value is None else Jsonb(value, dumps=encode)

    def text_list(self, values: Sequence[str], encode: Callable[[Any], str] = dumps) -> Any:
        return list(values)

    def boolean(self, value: bool) -> Any:
        return bool(value)

    def timestamp(self, moment: datetime) -> Any:
        return moment

    def any_of(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """One array parameter: one statement text, whatever the count (prepared once)."""
        if values:
            yield f"{column} = ANY(?)", [list(values)]

    def lock(self, sql: Sql, key: int) -> None:
        sql.execute("SELECT pg_advisory_xact_lock(?)", (key,))

    def clock(self, sql: Sql) -> float:
        """``now()``: the transaction's start, before every later statement's snapshot."""
        row = sql.one("SELECT extract(epoch FROM now())::float8")
        return float(row[0])  # type: ignore[index]


@lru_cache(maxsize=1024)
def _pyformat(text: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled), once per statement."""
    return text.replace("%", "%%").replace("?", "%s")


POSTGRES = PostgresDialect()


class PostgresBackend(SqlBackend):
    """A PostgreSQL database for the SQL stores (``stores/sql.py``), on its pool and under
    its budgets; ``owned``: closing the backend closes the pool."""

    dialect = POSTGRES

    def __init__(self, database: PostgresDatabase, *, owned: bool = False) -> None:
        self.database = database
        self.owned = owned

    def apply_schema(self, name: str, ddl: str) -> None:
        self.database.apply_schema(name, ddl)

    @contextmanager
    def write(self) -> Iterator[Sql]:
        with self.database.transaction() as connection:
            yield Sql(connection, POSTGRES)

    @contextmanager
    def read(self, *, short: bool = True) -> Iterator[Sql]:
        with self.database.transaction(read_only=short) as connection:
            yield Sql(connection, POSTGRES)

    def close(self) -> None:
        if self.owned:
            self.database.close()


# SQLSTATE classes of a database that cannot serve: connection exceptions, the server
# shutting down or not accepting connections yet, too many connections.
UNREACHABLE_STATES = ("08", "57P", "53300")


def unreachable(error: Exception) -> bool:
    """Whether ``error`` says the database is out of reach (what the circuit breaker counts),
    rather than that it answered a statement with an error such as a statement or lock
    timeout. A stuck table must not open the breaker: the dead-letter queue lives in the
    same database."""
    if isinstance(error, PoolTimeout):
        return True
    state = getattr(error, "sqlstate", None)
    return state is None or state.startswith(UNREACHABLE_STATES)


def _redact(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
