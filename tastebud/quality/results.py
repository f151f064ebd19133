"""Check results and their history, in the configured database.

One row per check per run, in ``quality_results``: ``quality.db`` beside the embedded event
store, or a table on PostgreSQL's pool. One implementation, its SQL written once
(``stores/sql.py``); the contract suite (``tests/quality/test_results_store.py``) runs it on
both backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tastebud.quality.rules import Status, worst
from tastebud.stores.check_history import CheckHistory, read_moment
from tastebud.stores.sql import SqlBackend, loads

SCHEMA = """
CREATE TABLE IF NOT EXISTS quality_results (
    id {identity},
    run_id TEXT NOT NULL,
    check_name TEXT NOT NULL,
    as_of {timestamp} NOT NULL,
    checked_at {timestamp} NOT NULL,
    status TEXT NOT NULL,
    critical {boolean} NOT NULL,
    metrics {json} NOT NULL,
    message TEXT NOT NULL,
    details {json} NOT NULL
);
CREATE INDEX IF NOT EXISTS quality_results_by_check ON quality_results (check_name, id);
CREATE INDEX IF NOT EXISTS quality_results_by_run ON quality_results (run_id);
"""
COLUMNS = "run_id, check_name, as_of, checked_at, status, critical, metrics, message, details"


@dataclass
class CheckResult:
    """What one check found: its status (the worst of its metrics'), each metric's value
    and status, a one-line message and the details that explain it."""

    check: str
    status: Status
    message: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    statuses: dict[str, Status] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    critical: bool = False

    @property
    def blocking(self) -> bool:
        """A failed critical check keeps the train job from training on the data."""
        return self.critical and self.status == "fail"

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "critical": self.critical,
            "message": self.message,
            "metrics": {
                name: {"value": value, "status": self.statuses.get(name)}
                for name, value in self.metrics.items()
            },
            "details": self.details,
        }


@dataclass
class QualityReport:
    """One run of the checks."""

    run_id: str
    as_of: datetime
    checked_at: datetime
    checks: list[CheckResult]
    duration_seconds: float = 0.0

    @property
    def status(self) -> Status:
        return worst([check.status for check in self.checks])

    @property
    def blocking(self) -> list[CheckResult]:
        return [check for check in self.checks if check.blocking]

    def summary(self) -> str:
        """One line: each check's status, the blocking ones named."""
        parts = [f"{check.check}={check.status}" for check in self.checks]
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "checked_at": self.checked_at.isoformat(),
            "status": self.status,
            "duration_seconds": round(self.duration_seconds, 3),
            "blocking": [check.check for check in self.blocking],
            "checks": [check.as_dict() for check in self.checks],
        }


@dataclass(frozen=True)
class StoredResult:
    """One row of the history."""

    id: int
    run_id: str
    check: str
    as_of: datetime
    checked_at: datetime
    status: str
    critical: bool
    metrics: dict[str, Any]
    message: str
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "as_of": self.as_of.isoformat(),
            "checked_at": self.checked_at.isoformat(),
        }


class QualityResultStore(CheckHistory[StoredResult]):
    """The history of check results on a SQL backend (closed with this store)."""

    def __init__(self, backend: SqlBackend) -> None:
        super().__init__(backend, "quality_results", SCHEMA, COLUMNS, _stored)

    def record(self, report: QualityReport) -> None:
        dialect = self.backend.dialect
        self.insert(
            [
                (
                    report.run_id,
                    check.check,
                    dialect.timestamp(report.as_of),
                    dialect.timestamp(report.checked_at),
                    check.status,
                    dialect.boolean(check.critical),
                    dialect.json(check.as_dict()["metrics"]),
                    check.message,
                    dialect.json(check.details),
                )
                for check in report.checks
            ]
        )

    def history(
        self,
        *,
        check: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredResult]:
        """Results newest first, optionally of one check, status or run, or checked since."""
        filters = [
            ("run_id = ?", run_id),
            ("check_name = ?", check),
            ("status = ?", status),
            ("checked_at >= ?", since),
        ]
        return self.select(filters, limit)


def _stored(row: tuple[Any, ...]) -> StoredResult:
    ident, run_id, check, as_of, checked_at, status, critical, metrics, message, details = row
    return StoredResult(
        id=int(ident),
        run_id=run_id,
        check=check,
        as_of=read_moment(as_of),
        checked_at=read_moment(checked_at),
        status=status,
        critical=bool(critical),
        metrics=loads(metrics),
        message=message,
        details=loads(details),
    )
