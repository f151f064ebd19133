"""The embedded run history: ``jobs.db`` (SQLite, WAL) beside the event store, and job
locks with ``flock`` on files under ``locks/`` (released by the kernel if the holder dies)."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tastebud.jobs.base import JobAlreadyRunning
from tastebud.jobs.history import (
    COLUMNS,
    RunHistory,
    RunRecord,
    check_status,
    output_json,
    record_from_row,
)

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    job_name TEXT NOT NULL,
    interval_start TEXT NOT NULL,
    interval_end TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_seconds REAL,
    error TEXT,
    error_kind TEXT,
    output TEXT
);
CREATE INDEX IF NOT EXISTS job_runs_by_job ON job_runs (job_name, id);
CREATE INDEX IF NOT EXISTS job_runs_by_interval ON job_runs (job_name, interval_end, status);
"""


def _iso(moment: datetime) -> str:
    # Fixed width, UTC: text order is time order.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class SqliteRunHistory(RunHistory):
    """The embedded default: ``jobs.db`` and ``locks/`` under the embedded database folder."""

    def __init__(self, root: Path) -> None:
        from tastebud.stores.sqlite import SqliteDatabase

        self.root = root
        self._db = SqliteDatabase(root / "jobs.db", SQLITE_SCHEMA)
        self._lock_dir = root / "locks"
        self._lock_dir.mkdir(parents=True, exist_ok=True)

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
        with self._db.write() as connection:
            cursor = connection.execute(
                "INSERT INTO job_runs (run_id, job_name, interval_start, interval_end, attempt,"
                " status, trigger, started_at) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                (run_id, job_name, _iso(start), _iso(end), attempt, trigger, _iso(started_at)),
            )
            return int(cursor.lastrowid or 0)

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
        with self._db.write() as connection:
            connection.execute(
                "UPDATE job_runs SET status = ?, finished_at = ?, duration_seconds = ?,"
                " error = ?, error_kind = ?, output = ? WHERE id = ?",
                (
                    status,
                    _iso(finished_at),
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
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._db.connection()
            .execute(
                f"SELECT {COLUMNS} FROM job_runs {where} ORDER BY id DESC LIMIT ?",
                [*params, int(limit)],
            )
            .fetchall()
        )
        return [record_from_row(row) for row in rows]

    def succeeded(self, job_name: str, start: datetime, end: datetime) -> bool:
        row = (
            self._db.connection()
            .execute(
                "SELECT 1 FROM job_runs WHERE job_name = ? AND interval_start = ?"
                " AND interval_end = ? AND status = 'succeeded' LIMIT 1",
                (job_name, _iso(start), _iso(end)),
            )
            .fetchone()
        )
        return row is not None

    def last_interval_end(self, job_name: str) -> datetime | None:
        (value,) = (
            self._db.connection()
            .execute("SELECT max(interval_end) FROM job_runs WHERE job_name = ?", (job_name,))
            .fetchone()
        )
        return datetime.fromisoformat(value) if value else None

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

    def close(self) -> None:
        self._db.close()
