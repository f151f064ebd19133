"""Monitoring results and their history, in the configured database.

One row per check per run, per model version, in ``monitoring_results``: ``monitoring.db``
beside the embedded event store, or a table on PostgreSQL's pool. One implementation, its
SQL written once (``stores/sql.py``); the contract suite (``tests/monitoring/
test_results_store.py``) runs it on both backends. A version's training-time baseline is a
row of check ``baseline``, computed once and read back by later runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tastebud.quality.rules import Status, worst
from tastebud.stores.check_history import CheckHistory, read_moment
from tastebud.stores.sql import SqlBackend, loads

SCHEMA = """
CREATE TABLE IF NOT EXISTS monitoring_results (
    id {identity},
    run_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    check_name TEXT NOT NULL,
    as_of {timestamp} NOT NULL,
    checked_at {timestamp} NOT NULL,
    status TEXT NOT NULL,
    metrics {json} NOT NULL,
    message TEXT NOT NULL,
    details {json} NOT NULL
);
CREATE INDEX IF NOT EXISTS monitoring_results_by_check
    ON monitoring_results (model_version, check_name, id);
CREATE INDEX IF NOT EXISTS monitoring_results_by_run ON monitoring_results (run_id);
"""
COLUMNS = "run_id, model_version, check_name, as_of, checked_at, status, metrics, message, details"


@dataclass
class MonitorCheck:
    """What one check found: ``fail`` when its retraining trigger fires, ``error`` when it
    could not run (never a pass), else ``pass``."""

    check: str
    status: Status
    message: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    trigger: str | None = None  # the rule judged (None: reported only)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "trigger": self.trigger,
            "message": self.message,
            "metrics": self.metrics,
            "details": self.details,
        }


@dataclass
class MonitorReport:
    """One run of the checks on one model version."""

    run_id: str
    model_version: str
    as_of: datetime
    checked_at: datetime
    checks: list[MonitorCheck]
    duration_seconds: float = 0.0

    @property
    def status(self) -> Status:
        return worst([check.status for check in self.checks if check.check != "baseline"])

    @property
    def firing(self) -> list[MonitorCheck]:
        """The checks whose retraining trigger fires."""
        return [c for c in self.checks if c.trigger is not None and c.status == "fail"]

    def summary(self) -> str:
        return ", ".join(f"{check.check}={check.status}" for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "as_of": self.as_of.isoformat(),
            "checked_at": self.checked_at.isoformat(),
            "status": self.status,
            "duration_seconds": round(self.duration_seconds, 3),
            "firing": [check.trigger for check in self.firing],
            "checks": [check.as_dict() for check in self.checks],
        }


@dataclass(frozen=True)
class StoredCheck:
    """One row of the history."""

    id: int
    run_id: str
    model_version: str
    check: str
    as_of: datetime
    checked_at: datetime
    status: str
    metrics: dict[str, Any]
    message: str
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "as_of": self.as_of.isoformat(),
            "checked_at": self.checked_at.isoformat(),
        }


class MonitorResultStore(CheckHistory[StoredCheck]):
    """The history of monitoring results on a SQL backend (closed with this store)."""

    def __init__(self, backend: SqlBackend) -> None:
        super().__init__(backend, "monitoring_results", SCHEMA, COLUMNS, _stored)

    def record(self, report: MonitorReport) -> None:
        dialect = self.backend.dialect
        self.insert(
            [
                (
                    report.run_id,
                    report.model_version,
                    check.check,
                    dialect.timestamp(report.as_of),
                    dialect.timestamp(report.checked_at),
                    check.status,
                    dialect.json(check.metrics),
                    check.message,
                    dialect.json({**check.details, "trigger": check.trigger}),
                )
                for check in report.checks
            ]
        )

    def history(
        self,
        *,
        model_version: str | None = None,
        check: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredCheck]:
        """Results newest first, optionally of one version, check, status or run."""
        filters = [
            ("run_id = ?", run_id),
            ("model_version = ?", model_version),
            ("check_name = ?", check),
            ("status = ?", status),
            ("checked_at >= ?", since),
        ]
        return self.select(filters, limit)

    def baseline(self, model_version: str) -> StoredCheck | None:
        """The version's training-time baseline, if one was computed."""
        found = self.history(model_version=model_version, check="baseline", status="pass", limit=1)
        return found[0] if found else None


def _stored(row: tuple[Any, ...]) -> StoredCheck:
    ident, run_id, version, check, as_of, checked_at, status, metrics, message, details = row
    return StoredCheck(
        id=int(ident),
        run_id=run_id,
        model_version=version,
        check=check,
        as_of=read_moment(as_of),
        checked_at=read_moment(checked_at),
        status=status,
        metrics=loads(metrics),
        message=message,
        details=loads(details),
    )
