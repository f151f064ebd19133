"""A failed critical check refuses the train job (production keeps serving); the quality
job records its runs; bad rules files are refused naming the file and the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tastebud.jobs import JobRunner, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.quality.rules import Rules, RulesError
from tastebud.quality.runner import open_results, run_checks
from tastebud.registry import open_registry

from .conftest import END, last_day


def negative_plays(events: pa.Table) -> pa.Table:
    recent = pc.and_(last_day(events, 6), pc.equal(events.column("event_type"), "play"))
    value = pc.if_else(recent, pc.negate(events.column("value")), events.column("value"))
    return events.set_column(events.schema.get_field_index("value"), "value", value)


def runner_for(stores, settings) -> JobRunner:
    return JobRunner(settings, build_registry(), open_run_history(settings), stores=stores)


def test_a_failed_critical_check_refuses_training(build) -> None:
    stores, settings = build(negative_plays)
    registry = open_registry(settings, stores.artifacts)
    before = registry.get("production").model_version
    outcome = runner_for(stores, settings).run("train", end=END)
    assert outcome.status == "refused"
    assert "training refused: critical data-quality checks failed (schema:" in outcome.error
    assert f"production model {before} keeps serving" in outcome.error
    assert registry.get("production").model_version == before
    assert len(registry.list_versions()) == 1  # nothing was trained
    with open_results(stores) as results:
        assert results.latest()[0].status == "fail"


@pytest.mark.postgres
def test_checks_run_and_record_on_postgresql(build, postgres_url: str) -> None:
    """The same checks over the PostgreSQL event store, the history in its table."""
    stores, settings = build(negative_plays, database_url=postgres_url)
    with open_results(stores) as results:
        report = run_checks(stores, settings, as_of=END, results=results)
        stored = results.latest()
    statuses = {check.check: check.status for check in report.checks}
    assert statuses == {
        "schema": "fail",
        "freshness": "pass",
        "completeness": "pass",
        "volume": "pass",
        "drift": "pass",
        "cold_start": "pass",
        "staleness": "pass",
    }
    assert {row.check: row.status for row in stored} == statuses


def test_the_quality_job_alerts_a_failing_check_once(build) -> None:
    stores, settings = build(negative_plays)
    runner = runner_for(stores, settings)
    first = runner.run("quality", end=END)
    assert first.status == "succeeded" and first.output["blocking"] == ["schema"]
    assert first.output["alerted"] == ["schema"]
    again = runner.run("quality", end=END + timedelta(minutes=1))
    assert again.output["blocking"] == ["schema"] and again.output["alerted"] == []


def test_the_quality_job_records_a_run(build) -> None:
    stores, settings = build()
    outcome = runner_for(stores, settings).run("quality", end=END)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.output["blocking"] == []
    with open_results(stores) as results:
        latest = results.latest()
    assert {row.check for row in latest} == set(outcome.output["checks"])
    assert {row.run_id for row in latest} == {outcome.output["run_id"]}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[thresholds."drift.item_popularity.pis"]\nwarn = 0.1\n', "drift.item_popularity.pis"),
        ('[thresholds."volume.drop"]\nwarn = 0.5\nfail = 0.2\n', "volume.drop"),
        ('[thresholds."cold_start.user_share"]\nfail = 1.5\n', "cold_start.user_share.fail"),
        ('[thresholds."volume.drop"]\nwarm = 0.5\n', "thresholds.volume.drop.warm"),
        ('[thresholds."volume.drop"]\nfail = "high"\n', "thresholds.volume.drop.fail"),
        ("[threshold]\n", "threshold"),
        ("not toml [", "not TOML"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_field(
    tmp_path: Path, build, text: str, named: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    stores, settings = build(model=False, rules_file=path)
    with pytest.raises(RulesError) as refused:
        run_checks(stores, settings, as_of=END)
    assert str(path) in str(refused.value) and named in str(refused.value)


def test_a_rules_file_overrides_settings_and_defaults(tmp_path: Path, build) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[thresholds."volume.drop"]\nfail = 0.9\n')
    _, settings = build(
        model=False, rules_file=path, thresholds={"volume.drop": {"warn": 0.3, "fail": 0.5}}
    )
    rules = Rules.from_settings(settings.quality)
    assert rules.thresholds["volume.drop"] == ("above", 0.3, 0.9)
    assert rules.judge("volume.drop", 0.95) == "fail"
    assert rules.judge("volume.drop", float("nan")) == "error"
