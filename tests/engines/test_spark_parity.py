"""Parity: popularity, affinity and trending on Spark (``local[2]``) publish what the local
engine publishes, on the same generated world, from the embedded (SQLite + Parquet) and the
PostgreSQL event stores: counts exactly, scores within 1e-9."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import SPARK_MASTER

from tastebud.config import Settings, load_settings
from tastebud.data.bulk_load import ingest_sources
from tastebud.data.loaders import open_sources
from tastebud.jobs import JobRunner, RetryPolicy, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.jobs.outputs import index_key, list_key, read_version
from tastebud.stores import Stores, open_stores

AS_OF = datetime(2025, 1, 13, tzinfo=UTC)  # the world's end
JOBS = ("popularity", "affinity", "trending")
# Fields a run stamps with its own time, not its result.
STAMPS = {"computed_at"}


@pytest.fixture(params=["embedded", "postgres"])
def world(
    request: pytest.FixtureRequest, home: Path, world_dir: Path, spark: Any
) -> Iterator[tuple[Settings, Stores]]:
    """The generated world ingested into the embedded store or a private PostgreSQL schema."""
    database = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = load_settings(
        database_url=database, online_url="memory://", spark_master=SPARK_MASTER
    )
    stores = open_stores(settings)
    report = ingest_sources(open_sources(world_dir), stores, settings)
    assert report.sources and not any(source.rejected for source in report.sources)
    yield settings, stores
    stores.close()


def on(settings: Settings, engine: str) -> Settings:
    jobs = settings.jobs.model_copy(update={"engine": engine})
    return settings.model_copy(update={"jobs": jobs})


def run(settings: Settings, stores: Stores, job: str) -> tuple[pa.Table, dict[str, Any]]:
    """Run ``job`` as of the world's end; its version table and what it published."""
    history = open_run_history(settings)
    try:
        runner = JobRunner(
            settings,
            build_registry(RetryPolicy(max_attempts=1)),
            history,
            stores=stores,
            clock=lambda: AS_OF,
        )
        outcome = runner.run(job, as_of=AS_OF)
    finally:
        history.close()
    assert outcome.status == "succeeded", outcome
    table = read_version(stores.artifacts, outcome.output["version"])
    return table, published(stores, job, table)


def published(stores: Stores, job: str, table: pa.Table) -> dict[str, Any]:
    online = stores.online
    if job == "affinity":
        users = sorted(set(table.column("user_id").to_pylist()))
        keys = [f"affinity:{user}" for user in users]
    else:
        index = json.loads(online.get(index_key(job)) or b"{}")
        keys = [index_key(job)] + [list_key(job, name) for name in index.get("categories", [])]
    documents = {}
    for key, raw in zip(keys, online.get_many(keys), strict=True):
        assert raw is not None, key
        documents[key] = {k: v for k, v in json.loads(raw).items() if k not in STAMPS}
    return documents


def assert_close(local: Any, spark: Any, where: str = "") -> None:
    """Equal, floats within 1e-9 (relative for large values)."""
    if isinstance(local, float) or isinstance(spark, float):
        assert math.isclose(local, spark, rel_tol=1e-9, abs_tol=1e-9), (where, local, spark)
    elif isinstance(local, dict):
        assert local.keys() == spark.keys(), where
        for key in local:
            assert_close(local[key], spark[key], f"{where}.{key}")
    elif isinstance(local, list):
        assert len(local) == len(spark), where
        for n, (left, right) in enumerate(zip(local, spark, strict=True)):
            assert_close(left, right, f"{where}[{n}]")
    else:
        assert local == spark, (where, local, spark)


def test_jobs_on_spark_publish_what_the_local_engine_publishes(
    world: tuple[Settings, Stores],
) -> None:
    settings, stores = world
    for job in JOBS:
        local_table, local_published = run(on(settings, "local"), stores, job)
        spark_table, spark_published = run(on(settings, "spark"), stores, job)
        assert local_table.num_rows > 0, job
        assert local_table.schema == spark_table.schema, job
        assert_close(local_table.to_pylist(), spark_table.to_pylist(), job)
        assert_close(local_published, spark_published, job)
