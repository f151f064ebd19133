"""The monitoring result history, run against every backend (embedded SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tastebud.monitoring.results import MonitorCheck, MonitorReport, MonitorResultStore
from tastebud.stores import Database, open_database

AS_OF = datetime(2026, 3, 9, 12, tzinfo=UTC)


@pytest.fixture(params=["embedded", "postgres"])
def results(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MonitorResultStore]:
    if request.param == "embedded":
        url = f"embedded://{tmp_path / 'db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database: Database = open_database(url)
    store = MonitorResultStore(database.sql_backend("monitoring"))
    yield store
    store.close()
    database.close()


def report(run: int, version: str = "v1", offline: str = "pass", baseline: bool = False):
    checks = [
        MonitorCheck(
            "offline",
            offline,  # type: ignore[arg-type]
            f"run {run}: ünïcode ♫",
            metrics={"offline.ndcg@10": 0.1, "offline.ndcg@10.drop": 0.3, "x": None},
            details={"users": 42},
            trigger="ndcg_drop",
        ),
        MonitorCheck("data_drift", "error", "could not run: no quality run", trigger="data_psi"),
    ]
    if baseline:
        checks.insert(0, MonitorCheck("baseline", "pass", "t", {"ndcg@10": 0.2}, {"e": [1.5]}))
    moment = AS_OF + timedelta(hours=run)
    return MonitorReport(f"run{run}", version, moment, moment, checks)


def test_results_round_trip_newest_first(results: MonitorResultStore) -> None:
    assert results.latest() == [] and results.baseline("v1") is None
    results.record(report(1, baseline=True))
    results.record(report(2, offline="fail"))
    rows = results.history()
    assert [(row.run_id, row.check) for row in rows] == [
        ("run2", "data_drift"),
        ("run2", "offline"),
        ("run1", "data_drift"),
        ("run1", "offline"),
        ("run1", "baseline"),
    ]
    offline = rows[1]
    assert offline.status == "fail" and offline.model_version == "v1"
    assert offline.message == "run 2: ünïcode ♫"
    assert offline.metrics == {"offline.ndcg@10": 0.1, "offline.ndcg@10.drop": 0.3, "x": None}
    assert offline.details == {"users": 42, "trigger": "ndcg_drop"}
    assert offline.as_of == AS_OF + timedelta(hours=2)
    assert offline.as_of.tzinfo is not None


def test_filters_latest_and_baseline(results: MonitorResultStore) -> None:
    results.record(report(1, baseline=True))
    results.record(report(2, version="v2", offline="fail"))
    assert [row.run_id for row in results.latest()] == ["run2", "run2"]
    assert [row.run_id for row in results.history(model_version="v1")] == ["run1"] * 3
    failed = results.history(status="fail")
    assert [(row.run_id, row.check) for row in failed] == [("run2", "offline")]
    assert len(results.history(since=AS_OF + timedelta(hours=2), limit=10)) == 2
    assert len(results.history(limit=1)) == 1
    baseline = results.baseline("v1")
    assert baseline is not None and baseline.metrics == {"ndcg@10": 0.2}
    assert baseline.details["e"] == [1.5]
    assert results.baseline("v2") is None
