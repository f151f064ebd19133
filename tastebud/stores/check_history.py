"""A history of check results in one SQL table: what the data-quality checks
(``quality.results``) and model monitoring (``monitoring.results``) record per run.

One row per check per run, written in one transaction; read back newest first with
optional filters, or as the most recent run whole. The table's columns and the row type are
the owner's; the SQL here is written once for SQLite and PostgreSQL (``stores.sql``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from tastebud.stores.errors import Closeable
from tastebud.stores.sql import SqlBackend, where

Row = TypeVar("Row")


def read_moment(value: Any) -> datetime:
    """A ``{timestamp}`` as read: ISO text from SQLite, a datetime from PostgreSQL."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC)


class CheckHistory(Closeable, Generic[Row]):
    """``table`` on ``backend`` (its ``schema`` applied once), rows parsed by ``parse`` from
    ``id`` followed by ``columns``; closed with this store."""

    def __init__(
        self,
        backend: SqlBackend,
        table: str,
        schema: str,
        columns: str,
        parse: Callable[[tuple[Any, ...]], Row],
    ) -> None:
        self.backend = backend
        self.table = table
        self.columns = columns
        self.parse = parse
        backend.apply_schema(table, backend.dialect.ddl(schema))

    def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """One run's rows, in one transaction."""
        marks = ",".join("?" * len(self.columns.split(",")))
        with self.backend.write() as sql:
            sql.many(f"INSERT INTO {self.table} ({self.columns}) VALUES ({marks})", rows)

    def select(self, filters: Sequence[tuple[str, Any]], limit: int) -> list[Row]:
        """Rows newest first; ``filters`` are ``("column = ?", value)`` pairs, a None value
        leaving its filter out; ``checked_at`` values are given as datetimes."""
        dialect = self.backend.dialect
        clause, params = where(
            [
                (term, dialect.timestamp(value) if isinstance(value, datetime) else value)
                for term, value in filters
            ]
        )
        with self.backend.read(short=False) as sql:
            rows = sql.all(
                f"SELECT id, {self.columns} FROM {self.table}{clause} ORDER BY id DESC LIMIT ?",
                [*params, int(limit)],
            )
        return [self.parse(row) for row in rows]

    def latest(self) -> list[Row]:
        """Every result of the most recent run (empty before the first)."""
        with self.backend.read(short=False) as sql:
            row = sql.one(f"SELECT run_id FROM {self.table} ORDER BY id DESC LIMIT 1")
            if row is None:
                return []
            rows = sql.all(
                f"SELECT id, {self.columns} FROM {self.table} WHERE run_id = ? ORDER BY id",
                (row[0],),
            )
        return [self.parse(row) for row in rows]

    def close(self) -> None:
        self.backend.close()
