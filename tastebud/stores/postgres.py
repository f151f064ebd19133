"""PostgreSQL plumbing shared by the server backends: one connection pool per URL, migrations
under an advisory lock (several workers may start at once), and errors mapped to store errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tastebud.stores.errors import StoreUnavailable

MIGRATION_LOCK = 0x7A57EB0D  # any constant shared by every tastebud process


def _configure(connection: psycopg.Connection) -> None:
    connection.execute("SET TIME ZONE 'UTC'")
    connection.commit()


class PostgresDatabase:
    """A pool of connections to one database; schemas are applied once per process."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        try:
            self.pool = ConnectionPool(
                url,
                min_size=min_size,
                max_size=max_size,
                configure=_configure,
                open=True,
                timeout=10.0,
                name="tastebud",
            )
            self.pool.wait(timeout=10.0)
        except (PoolTimeout, psycopg.OperationalError) as error:
            message = f"PostgreSQL at {_redact(url)} is unreachable: {error}"
            raise StoreUnavailable(message) from error
        self._applied: set[str] = set()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """A connection inside one transaction, committed on success."""
        try:
            with self.pool.connection() as connection:
                yield connection
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise StoreUnavailable(f"PostgreSQL: {error}") from error

    def apply_schema(self, name: str, sql: str) -> None:
        if name in self._applied:
            return
        with self.transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            connection.execute(sql)  # type: ignore[arg-type]
        self._applied.add(name)

    def close(self) -> None:
        self.pool.close()


def _redact(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
