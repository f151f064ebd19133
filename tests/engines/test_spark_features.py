"""Feature materialization on Spark: the views that reuse the jobs' computations
(item_popularity, user_category_affinity), the SQL views (one DuckDB query, translated
for Spark by sqlglot) and the Python views by entity (user_rhythm: one function, run per
partition on the executors) compute the same values on either engine when the
``materialize`` job runs there."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

import pyarrow as pa
import pytest
from test_spark_engine import world  # noqa: F401  (the fixture)
from test_spark_parity import AS_OF, assert_close, on

from tastebud.config import Settings
from tastebud.engines import EngineError, engine_name
from tastebud.engines.spark import spark_sql
from tastebud.features.compute import TransformError, compute_view, context_for
from tastebud.features.views import FeatureRegistry, FeatureView
from tastebud.jobs import JobContext
from tastebud.stores import Stores

VIEWS = ("item_popularity", "user_category_affinity")
SQL_VIEWS = ("item_freshness", "user_engagement")


ENTITY_PYTHON_VIEWS = ("user_rhythm",)


def values(
    settings: Settings, stores: Stores, view_name: str, view: FeatureView | None = None
) -> list[dict[str, object]]:
    view = view or FeatureRegistry.load().views[view_name]
    job = JobContext(
        job_name="materialize",
        run_id=uuid.uuid4().hex,
        attempt=1,
        start=AS_OF - timedelta(minutes=10),
        end=AS_OF,
        settings=settings,
        stores=stores,
    )
    table = compute_view(context_for(view, AS_OF, settings, stores, job))
    return table.sort_by("entity_id").to_pylist()


def test_job_backed_views_are_equal_on_both_engines(world: tuple[Settings, Stores]) -> None:  # noqa: F811
    settings, stores = world
    spark = on(settings, "spark")
    assert engine_name(spark, "materialize") == "spark"
    for name in VIEWS:
        local_rows = values(on(settings, "local"), stores, name)
        spark_rows = values(spark, stores, name)
        assert local_rows, name
        assert_close(local_rows, spark_rows, name)


def test_sql_views_are_equal_on_both_engines(world: tuple[Settings, Stores]) -> None:  # noqa: F811
    settings, stores = world
    registry = FeatureRegistry.load()
    assert {name for name, view in registry.views.items() if view.source.kind == "sql"} == set(
        SQL_VIEWS
    )
    for name in SQL_VIEWS:
        local_rows = values(on(settings, "local"), stores, name)
        spark_rows = values(on(settings, "spark"), stores, name)
        assert local_rows and len(local_rows) == len(spark_rows), name
        for local, spark in zip(local_rows, spark_rows, strict=True):
            assert local.keys() == spark.keys()
            for key, value in local.items():
                if isinstance(value, float):
                    # Differences of epoch seconds (~1.7e9, a double's step there is 2.4e-7)
                    # round differently in DuckDB and Spark: equal to a microsecond, the
                    # events' own resolution.
                    assert math.isclose(value, spark[key], rel_tol=1e-9, abs_tol=1e-6), key
                else:
                    assert value == spark[key], (name, key)


def test_sql_the_spark_engine_cannot_translate_is_a_clear_failure() -> None:
    with pytest.raises(EngineError, match="cannot translate the view's SQL for Spark"):
        spark_sql("SELECT FROM WHERE (", {"events": "events_1"})


def test_python_views_by_entity_are_equal_on_both_engines(world: tuple[Settings, Stores]) -> None:  # noqa: F811
    settings, stores = world
    registry = FeatureRegistry.load()
    kinds = {name: view.source.kind for name, view in registry.views.items()}
    assert {name for name, kind in kinds.items() if kind == "entity_python"} == set(
        ENTITY_PYTHON_VIEWS
    )
    for name in ENTITY_PYTHON_VIEWS:
        local_rows = values(on(settings, "local"), stores, name)
        spark_rows = values(on(settings, "spark"), stores, name)
        assert len(local_rows) > 100, name  # every active user of the world
        # ints exactly, the medians within 1e-9
        assert_close(local_rows, spark_rows, name)
        assert any(row["median_gap_hours"] is not None for row in local_rows)


def every_row_twice(events: pa.Table, as_of: datetime) -> pa.Table:
    """Not per entity: each user's row twice (the check below refuses it)."""
    users = events.column("user_id").unique()
    return pa.table({"entity_id": pa.concat_arrays([users, users])})


def test_a_python_view_that_is_not_per_entity_is_refused_by_name(
    world: tuple[Settings, Stores],  # noqa: F811
) -> None:
    settings, stores = world
    bad = FeatureView.model_validate(
        {
            "name": "twice",
            "version": "1.0.0",
            "entity": "user",
            "description": "Each user twice.",
            "owner": "tests",
            "ttl_seconds": 60,
            "source": {"kind": "entity_python", "transform": f"{__name__}:every_row_twice"},
            "features": [{"name": "entity_id_copy", "dtype": "string", "description": "x"}],
        }
    )
    with pytest.raises(TransformError, match="view twice: its function returned an entity"):
        values(on(settings, "local"), stores, "twice", bad)
    # On Spark the function must be importable on the executors; this test module is not,
    # so the failure names the view rather than showing a JVM stack trace.
    with pytest.raises(EngineError, match=r"^view twice: the Spark job failed"):
        values(on(settings, "spark"), stores, "twice", bad)
