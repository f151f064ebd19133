"""Feature materialization on Spark: the views that reuse the jobs' computations
(item_popularity, user_category_affinity) and the SQL views (one DuckDB query, translated
for Spark by sqlglot) compute the same values on either engine when the ``materialize`` job
runs there."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

import pytest
from test_spark_engine import world  # noqa: F401  (the fixture)
from test_spark_parity import AS_OF, assert_close, on

from tastebud.config import Settings
from tastebud.engines import EngineError, engine_name
from tastebud.engines.spark import spark_sql
from tastebud.features.compute import compute_view, context_for
from tastebud.features.views import FeatureRegistry
from tastebud.jobs import JobContext
from tastebud.stores import Stores

VIEWS = ("item_popularity", "user_category_affinity")
SQL_VIEWS = ("item_freshness", "user_engagement")


def values(settings: Settings, stores: Stores, view_name: str) -> list[dict[str, object]]:
    view = FeatureRegistry.load().views[view_name]
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
