"""Seeded problems on a generated world, each caught by the check that should catch it, and
the clean world with no critical alert (issue 19, deliverable 1)."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from tastebud.data import faults
from tastebud.quality.results import CheckResult, QualityReport
from tastebud.quality.runner import run_checks

from .conftest import END


def by_name(report: QualityReport) -> dict[str, CheckResult]:
    return {check.check: check for check in report.checks}


def test_a_clean_world_raises_no_critical_alert(build) -> None:
    stores, settings = build()
    report = run_checks(stores, settings, as_of=END)
    checks = by_name(report)
    assert report.blocking == [], report.summary()
    assert all(check.status != "error" for check in report.checks), report.summary()
    assert all(check.status != "fail" for check in report.checks), report.summary()
    assert checks["drift"].metrics["drift.item_popularity.psi"] < 0.1
    assert checks["cold_start"].metrics["cold_start.user_share"] < 0.2
    assert checks["schema"].metrics["schema.invalid_share"] == 0.0
    assert checks["staleness"].metrics["model.staleness_hours"] == 24.0


def test_a_schema_break_is_caught_by_the_schema_check(build) -> None:
    """A producer that sends ratings on a 1-100 scale and negative play durations."""

    def seed(events: pa.Table) -> pa.Table:
        return faults.schema_break(events, END - timedelta(hours=6), END)

    stores, settings = build(seed)
    schema = by_name(run_checks(stores, settings, as_of=END))["schema"]
    assert schema.status == "fail" and schema.blocking
    broken = {failure["column"] for failure in schema.details["failures"]}
    assert broken == {"rating_value", "seconds_value"}


def test_a_stalled_source_is_caught_by_freshness(build) -> None:
    """The devices of type "other" (6% of users: ~6 an hour in the evening) stop sending six
    hours before the end."""

    def seed(events: pa.Table) -> pa.Table:
        return faults.stalled_source(events, END - timedelta(hours=6), END, "other")

    stores, settings = build(seed)
    freshness = by_name(run_checks(stores, settings, as_of=END))["freshness"]
    assert freshness.status == "fail", freshness.message
    assert freshness.details["sources"][0]["source"] == "device_type=other"
    assert freshness.details["sources"][0]["lag_minutes"] >= 350


def test_half_the_volume_missing_for_one_hour_is_caught(build, world) -> None:
    """Half of the events of the last day's busiest hour are lost."""

    def seed(events: pa.Table) -> pa.Table:
        hour = faults.busiest_hour(events, END - timedelta(days=1), END)
        return faults.volume_drop(events, hour, hour + timedelta(hours=1), share=0.5)

    stores, settings = build(seed)
    volume = by_name(run_checks(stores, settings, as_of=END))["volume"]
    assert volume.status == "fail", volume.message
    assert 0.4 < volume.metrics["volume.drop"] < 0.6
    assert len(volume.details["anomalies"]) == 1


def test_a_shift_of_item_popularity_is_caught_by_drift(build) -> None:
    """On the last day every item's events go to another item (a reshuffled popularity)."""

    def seed(events: pa.Table) -> pa.Table:
        return faults.popularity_shift(events, END - timedelta(days=1), END)

    stores, settings = build(seed)
    drift = by_name(run_checks(stores, settings, as_of=END))["drift"]
    assert drift.statuses["drift.item_popularity.psi"] == "fail", drift.message
    assert drift.statuses["drift.event_type.psi"] == "pass"
    assert drift.details["item_popularity"]["chi_square_p"] < 1e-6


def test_a_surge_of_unknown_users_is_caught_by_cold_start(build) -> None:
    """On the last day, half of the events come from users never seen before."""

    def seed(events: pa.Table) -> pa.Table:
        return faults.unknown_user_surge(events, END - timedelta(days=1), END, share=0.5)

    stores, settings = build(seed)
    cold = by_name(run_checks(stores, settings, as_of=END))["cold_start"]
    assert cold.status == "fail", cold.message
    assert cold.metrics["cold_start.user_share"] > 0.4
    assert cold.metrics["cold_start.item_share"] < 0.1  # items new that day, as every day


def test_checks_without_a_training_snapshot_report_error_not_pass(build) -> None:
    stores, settings = build(model=False)
    checks = by_name(run_checks(stores, settings, as_of=END))
    for name in ("drift", "cold_start", "staleness"):
        assert checks[name].status == "error"
        assert "no production model" in checks[name].message


def test_an_empty_window_cannot_pass(build) -> None:
    stores, settings = build(model=False)
    checks = by_name(run_checks(stores, settings, as_of=END + timedelta(days=30)))
    for name in ("schema", "freshness", "completeness", "volume"):
        assert checks[name].status == "error", checks[name].message


def test_an_unreadable_event_store_makes_every_check_an_error(build, tmp_path) -> None:
    """A damaged segment (the disk, not the data): no check can run, so none passes."""
    stores, settings = build()
    for segment in (tmp_path / "home" / "db" / "events" / "segments").glob("*.parquet"):
        segment.write_bytes(b"not parquet at all")
    report = run_checks(stores, settings, as_of=END)
    assert {check.status for check in report.checks} == {"error"}
    assert all("could not be read" in check.message for check in report.checks)
    assert report.blocking == []  # an error alerts; it does not block training by itself
