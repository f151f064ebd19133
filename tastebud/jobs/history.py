"""Run history and job locks, in the configured database.

Every attempt is one row (status, attempt number, interval, start, duration, error), written
when the attempt starts and completed when it ends, so a crashed process leaves a visible
``running`` row rather than nothing. Embedded mode keeps the rows in ``jobs.db`` beside the
event store and locks with ``flock`` on files beside it; PostgreSQL keeps them in
``tastebud_job_runs`` and locks with session advisory locks (released by the server if the
holder dies).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tastebud.stores import Closeable
from tastebud.stores.sql import SqlBackend, where

STATUSES = ("running", "succeeded", "failed", "timeout", "skipped", "refused")


@dataclass(frozen=True)
class RunRecord:
    """One attempt of one run."""

    id: int
    run_id: str
    job_name: str
    interval_start: datetime
    interval_end: datetime
    attempt: int
    status: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    error: str | None
    error_kind: str | None
    output: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in self.__dict__.items()
        }


SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    id {identity},
    run_id TEXT NOT NULL,
    job_name TEXT NOT NULL,
    interval_start {timestamp} NOT NULL,
    interval_end {timestamp} NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started_at {timestamp} NOT NULL,
    finished_at {timestamp},
    duration_seconds {real},
    error TEXT,
    error_kind TEXT,
    output {json}
);
CREATE INDEX IF NOT EXISTS {table}_by_job ON {table} (job_name, id);
CREATE INDEX IF NOT EXISTS {table}_by_interval ON {table} (job_name, interval_end, status);
"""


class RunHistory(Closeable, ABC):
    """Attempts of job runs, and the per-job locks that keep two runs apart.

    The attempts are rows of ``table`` in a SQL backend, their SQL written once
    (``stores/sql.py``); the locks are each backend's own (``lock``)."""

    def __init__(self, backend: SqlBackend, table: str) -> None:
        self.backend = backend
        self.table = table
        backend.apply_schema("jobs", backend.dialect.ddl(SCHEMA, table=table))

    def start_attempt(
        self,
        *,
        run_id: str,
        job_name: str,
        start: datetime,
        end: datetime,
        attempt: int,
        trigger: str,
        started_at: datetime,
    ) -> int:
        """Record an attempt as running; returns its id."""
        at = self.backend.dialect.timestamp
        with self.backend.write() as sql:
            row = sql.one(
                f"INSERT INTO {self.table} (run_id, job_name, interval_start, interval_end,"
                " attempt, status, trigger, started_at)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?, ?) RETURNING id",
                (run_id, job_name, at(start), at(end), attempt, trigger, at(started_at)),
            )
        return int(row[0])  # type: ignore[index]

    def finish_attempt(
        self,
        attempt_id: int,
        *,
        status: str,
        finished_at: datetime,
        duration_seconds: float,
        error: str | None = None,
        error_kind: str | None = None,
        output: dict[str, Any] | None = None,
    ) -> None:
        check_status(status)
        dialect = self.backend.dialect
        with self.backend.write() as sql:
            sql.execute(
                f"UPDATE {self.table} SET status = ?, finished_at = ?, duration_seconds = ?,"
                " error = ?, error_kind = ?, output = ? WHERE id = ?",
                (
                    status,
                    dialect.timestamp(finished_at),
                    duration_seconds,
                    error,
                    error_kind,
                    dialect.json(output),
                    attempt_id,
                ),
            )

    def list_runs(
        self, *, job_name: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Attempts, newest first."""
        clause, params = where([("job_name = ?", job_name), ("status = ?", status)])
        with self.backend.read(short=False) as sql:
            rows = sql.all(
                f"SELECT {COLUMNS} FROM {self.table}{clause} ORDER BY id DESC LIMIT ?",
                [*params, int(limit)],
            )
        return [record_from_row(row) for row in rows]

    def succeeded(self, job_name: str, start: datetime, end: datetime) -> bool:
        """Whether some attempt over exactly this interval succeeded."""
        at = self.backend.dialect.timestamp
        with self.backend.read(short=False) as sql:
            row = sql.one(
                f"SELECT 1 FROM {self.table} WHERE job_name = ? AND interval_start = ?"
                " AND interval_end = ? AND status = 'succeeded' LIMIT 1",
                (job_name, at(start), at(end)),
            )
        return row is not None

    def last_interval_end(self, job_name: str) -> datetime | None:
        """The end of the newest interval any attempt of this job covered."""
        with self.backend.read(short=False) as sql:
            row = sql.one(
                f"SELECT max(interval_end) FROM {self.table} WHERE job_name = ?", (job_name,)
            )
        return moment(row[0]) if row else None

    @abstractmethod
    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold ``name`` exclusively across processes, or raise JobAlreadyRunning at once."""
        yield

    def close(self) -> None:
        self.backend.close()


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}")


COLUMNS = (
    "id, run_id, job_name, interval_start, interval_end, attempt, status, trigger,"
    " started_at, finished_at, duration_seconds, error, error_kind, output"
)


def moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value)


def record_from_row(row: tuple[Any, ...]) -> RunRecord:
    output = row[13]
    if isinstance(output, str):
        output = json.loads(output)
    return RunRecord(
        id=int(row[0]),
        run_id=row[1],
        job_name=row[2],
        interval_start=moment(row[3]),  # type: ignore[arg-type]
        interval_end=moment(row[4]),  # type: ignore[arg-type]
        attempt=int(row[5]),
        status=row[6],
        trigger=row[7],
        started_at=moment(row[8]),  # type: ignore[arg-type]
        finished_at=moment(row[9]),
        duration_seconds=row[10],
        error=row[11],
        error_kind=row[12],
        output=output,
    )
