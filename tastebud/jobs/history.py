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
from urllib.parse import urlsplit

from tastebud.config import Settings
from tastebud.stores import POSTGRES_SCHEMES, Closeable, StoreError, local_path

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


class RunHistory(Closeable, ABC):
    """Attempts of job runs, and the per-job locks that keep two runs apart."""

    @abstractmethod
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

    @abstractmethod
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
    ) -> None: ...

    @abstractmethod
    def list_runs(
        self, *, job_name: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Attempts, newest first."""

    @abstractmethod
    def succeeded(self, job_name: str, start: datetime, end: datetime) -> bool:
        """Whether some attempt over exactly this interval succeeded."""

    @abstractmethod
    def last_interval_end(self, job_name: str) -> datetime | None:
        """The end of the newest interval any attempt of this job covered."""

    @abstractmethod
    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold ``name`` exclusively across processes, or raise JobAlreadyRunning at once."""
        yield


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}")


def output_json(output: dict[str, Any] | None) -> str | None:
    return None if output is None else json.dumps(output, sort_keys=True, default=str)


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


def open_run_history(settings: Settings) -> RunHistory:
    """The run history behind ``settings.database_url`` (its own connections)."""
    url = settings.resolved_database_url
    scheme = urlsplit(url).scheme
    if scheme == "embedded":
        from tastebud.jobs.history_sqlite import SqliteRunHistory

        return SqliteRunHistory(local_path(url))
    if scheme in POSTGRES_SCHEMES:
        from tastebud.jobs.history_postgres import PostgresRunHistory

        return PostgresRunHistory(url)
    raise StoreError(f"unsupported database URL scheme {scheme!r} for job history")
