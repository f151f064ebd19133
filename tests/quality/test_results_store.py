"""The quality result history, run against every backend (embedded SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tastebud.quality.results import CheckResult, QualityReport, QualityResultStore
from tastebud.stores import Database, open_database

AS_OF = datetime(2026, 3, 9, 12, tzinfo=UTC)


@pytest.fixture(params=["embedded", "postgres"])
def results(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QualityResultStore]:
    if request.param == "embedded":
        url = f"embedded://{tmp_path / 'db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database: Database = open_database(url)
    store = QualityResultStore(database.sql_backend("quality"))
    yield store
    store.close()
    database.close()


def report(run: int, volume: str = "pass") -> QualityReport:
    checks = [
        CheckResult(
            "volume",
            volume,  # type: ignore[arg-type]
            f"run {run}: ünïcode ♫",
            metrics={"volume.drop": 0.5 if volume == "fail" else 0.0, "volume.spike": None},
            statuses={"volume.drop": volume, "volume.spike": "error"},  # type: ignore[dict-item]
            details={"anomalies": [{"hour": "2026-03-09T10:00:00+00:00", "ratio": 0.5}]},
            critical=True,
        ),
        CheckResult("drift", "error", "could not run: no production model"),
    ]
    moment = AS_OF + timedelta(hours=run)
    return QualityReport(f"run{run}", moment, moment, checks)


def test_results_round_trip_newest_first(results: QualityResultStore) -> None:
    results.record(report(0))
    results.record(report(1, volume="fail"))
    rows = results.history()
    assert [(row.run_id, row.check) for row in rows] == [
        ("run1", "drift"),
        ("run1", "volume"),
        ("run0", "drift"),
        ("run0", "volume"),
    ]
    volume = rows[1]
    assert volume.status == "fail" and volume.critical is True
    assert volume.metrics["volume.drop"] == {"value": 0.5, "status": "fail"}
    assert volume.metrics["volume.spike"] == {"value": None, "status": "error"}
    assert volume.details["anomalies"][0]["ratio"] == 0.5
    assert volume.message == "run 1: ünïcode ♫"
    assert volume.as_of == AS_OF + timedelta(hours=1) and volume.as_of.tzinfo is not None
    assert rows[0].critical is False


def test_history_filters_and_latest(results: QualityResultStore) -> None:
    assert results.latest() == []
    for run in range(4):
        results.record(report(run, volume="fail" if run % 2 else "pass"))
    assert [row.run_id for row in results.latest()] == ["run3", "run3"]
    failed = results.history(check="volume", status="fail")
    assert [row.run_id for row in failed] == ["run3", "run1"]
    recent = results.history(since=AS_OF + timedelta(hours=2), check="volume")
    assert [row.run_id for row in recent] == ["run3", "run2"]
    assert len(results.history(limit=3)) == 3
