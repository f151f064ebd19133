"""The PostgreSQL run history: ``tastebud_job_runs``, and job locks as session advisory
locks on a dedicated connection (released by the server if the holder dies)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from tastebud.jobs.base import JobAlreadyRunning
from tastebud.jobs.history import (
    COLUMNS,
    RunHistory,
    RunRecord,
    check_status,
    moment,
    output_json,
    record_from_row,
)

POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS tastebud_job_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT NOT NULL,
    job_name TEXT NOT NULL,
    interval_start TIMESTAMPTZ NOT NULL,
    interval_end TIMESTAMPTZ NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    duration_seconds DOUBLE PRECISION,
    error TEXT,
    error_kind TEXT,
    output JSONB
);
CREATE INDEX IF NOT EXISTS tastebud_job_runs_by_job ON tastebud_job_runs (job_name, id);
CREATE INDEX IF NOT EXISTS tastebud_job_runs_by_interval
    ON tastebud_job_runs (job_name, interval_end, status);
"""


def advisory_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a job name (stable across processes)."""
    digest = hashlib.blake2b(f"tastebud-job:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresRunHistory(RunHistory):
    """``tastebud_job_runs`` in the configured PostgreSQL; locks are advisory locks held on a
    dedicated connection for as long as the run lasts."""

    def __init__(self, url: str) -> None:
        from tastebud.stores.postgres import PostgresDatabase

        self.url = url
        self._db = PostgresDatabase(url, max_size=2)
        self._db.apply_schema("jobs", POSTGRES_SCHEMA)

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
        with self._db.transaction() as connection:
            row = connection.execute(
                "INSERT INTO tastebud_job_runs (run_id, job_name, interval_start, interval_end,"
                " attempt, status, trigger, started_at)"
                " VALUES (%s, %s, %s, %s, %s, 'running', %s, %s) RETURNING id",
                (run_id, job_name, start, end, attempt, trigger, started_at),
            ).fetchone()
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
        with self._db.transaction() as connection:
            connection.execute(
                "UPDATE tastebud_job_runs SET status = %s, finished_at = %s,"
                " duration_seconds = %s, error = %s, error_kind = %s, output = %s::jsonb"
                " WHERE id = %s",
                (
                    status,
                    finished_at,
                    duration_seconds,
                    error,
                    error_kind,
                    output_json(output),
                    attempt_id,
                ),
            )

    def list_runs(
        self, *, job_name: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        clauses, params = [], []
        for column, value in (("job_name", job_name), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._db.transaction() as connection:
            rows = connection.execute(
                f"SELECT {COLUMNS} FROM tastebud_job_runs {where} ORDER BY id DESC LIMIT %s",
                [*params, int(limit)],
            ).fetchall()
        return [record_from_row(row) for row in rows]

    def succeeded(self, job_name: str, start: datetime, end: datetime) -> bool:
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT 1 FROM tastebud_job_runs WHERE job_name = %s AND interval_start = %s"
                " AND interval_end = %s AND status = 'succeeded' LIMIT 1",
                (job_name, start, end),
            ).fetchone()
        return row is not None

    def last_interval_end(self, job_name: str) -> datetime | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT max(interval_end) FROM tastebud_job_runs WHERE job_name = %s",
                (job_name,),
            ).fetchone()
        return moment(row[0]) if row else None

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        import psycopg

        from tastebud.stores import StoreUnavailable

        key = advisory_key(name)
        try:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"PostgreSQL: {error}") from error
        try:
            (acquired,) = connection.execute(  # type: ignore[misc]
                "SELECT pg_try_advisory_lock(%s)", (key,)
            ).fetchone()
            if not acquired:
                raise JobAlreadyRunning(
                    f"{name} is already running (PostgreSQL advisory lock {key} is held)"
                )
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            connection.close()

    def close(self) -> None:
        self._db.close()
