"""The Spark engine beyond parity: reading a day-partitioned event log written by
``tastebud export events``, and the bad-input rules (an unreachable master or a job that
fails in Spark leaves the previous outputs serving and records the failure)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SPARK_MASTER
from test_spark_parity import AS_OF, assert_close, on, run

from tastebud.config import Settings, load_settings
from tastebud.data.bulk_load import ingest_sources
from tastebud.data.loaders import open_sources
from tastebud.engines import EngineError
from tastebud.engines.spark import check_master
from tastebud.jobs import JobFailed, JobRunner, RetryPolicy, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.jobs.outputs import index_key
from tastebud.stores import Stores, open_stores
from tastebud.stores.export import export_events


@pytest.fixture
def world(home: Path, world_dir: Path, spark: Any) -> Iterator[tuple[Settings, Stores]]:
    settings = load_settings(online_url="memory://", spark_master=SPARK_MASTER)
    stores = open_stores(settings)
    ingest_sources(open_sources(world_dir), stores, settings)
    yield settings, stores
    stores.close()


def with_jobs(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update={"jobs": settings.jobs.model_copy(update=update)})


def test_reads_an_exported_event_log(world: tuple[Settings, Stores], tmp_path: Path) -> None:
    settings, stores = world
    lake = tmp_path / "lake"
    exported = export_events(stores.events, str(lake))
    assert len(exported.days) == 12
    local_table, local_published = run(on(settings, "local"), stores, "popularity")
    lake_settings = with_jobs(on(settings, "spark"), spark_events_url=str(lake))
    spark_table, spark_published = run(lake_settings, stores, "popularity")
    assert_close(local_table.to_pylist(), spark_table.to_pylist(), "popularity")
    assert_close(local_published, spark_published, "popularity")


def failing_run(settings: Settings, stores: Stores, job: str) -> str:
    """Run ``job``, which must fail; the error recorded in the run history."""
    history = open_run_history(settings)
    try:
        runner = JobRunner(
            settings,
            build_registry(RetryPolicy(max_attempts=1)),
            history,
            stores=stores,
            clock=lambda: AS_OF,
        )
        with pytest.raises(JobFailed):
            runner.run(job, as_of=AS_OF)
        latest = history.list_runs(job_name=job, limit=1)[0]
        assert latest.status == "failed"
        return latest.error or ""
    finally:
        history.close()


def test_an_unreachable_master_fails_fast_and_the_previous_list_keeps_serving(
    world: tuple[Settings, Stores],
) -> None:
    settings, stores = world
    run(on(settings, "local"), stores, "popularity")
    serving = stores.online.get(index_key("popularity"))
    unreachable = on(settings, "spark").model_copy(update={"spark_master": "spark://127.0.0.1:9"})
    error = failing_run(unreachable, stores, "popularity")
    assert "spark://127.0.0.1:9 is unreachable" in error
    assert stores.online.get(index_key("popularity")) == serving
    with pytest.raises(EngineError, match="unreachable"):
        check_master("k8s://https://127.0.0.1:9", timeout=1)
    check_master("local[2]")  # nothing to reach


def test_a_job_failing_in_spark_keeps_the_previous_list(
    world: tuple[Settings, Stores], tmp_path: Path
) -> None:
    settings, stores = world
    run(on(settings, "local"), stores, "trending")
    serving = json.loads(stores.online.get(index_key("trending")) or b"{}")
    lake = tmp_path / "lake"
    export_events(stores.events, str(lake))
    # A damaged file in the window's last day: Spark cannot read it.
    damaged = next((lake / "day=2025-01-12").iterdir())
    damaged.write_bytes(b"PAR1 not parquet at all PAR1")
    broken = with_jobs(on(settings, "spark"), spark_events_url=str(lake))
    error = failing_run(broken, stores, "trending")
    assert "Spark" in error or "event log" in error
    assert len(error) < 1_000  # the first line, not a JVM stack trace
    assert json.loads(stores.online.get(index_key("trending")) or b"{}") == serving


def test_an_event_log_that_is_not_an_export_is_a_clear_failure(
    world: tuple[Settings, Stores], tmp_path: Path
) -> None:
    settings, stores = world
    flat = tmp_path / "flat"
    flat.mkdir()
    stores.events.export_parquet(flat / "events.parquet")  # one file, no day partitions
    wrong = with_jobs(on(settings, "spark"), spark_events_url=str(flat))
    error = failing_run(wrong, stores, "popularity")
    assert f"cannot read the event log at {flat}" in error
    missing = with_jobs(on(settings, "spark"), spark_events_url=str(tmp_path / "nowhere"))
    assert "cannot read the event log" in failing_run(missing, stores, "popularity")
