"""Feature materialization on Spark: the views that reuse the jobs' computations
(item_popularity, user_category_affinity) compute the same values on either engine when
the ``materialize`` job runs there."""

from __future__ import annotations

import uuid
from datetime import timedelta

from test_spark_engine import world  # noqa: F401  (the fixture)
from test_spark_parity import AS_OF, assert_close, on

from tastebud.config import Settings
from tastebud.engines import engine_name
from tastebud.features.compute import compute_view, context_for
from tastebud.features.views import FeatureRegistry
from tastebud.jobs import JobContext
from tastebud.stores import Stores

VIEWS = ("item_popularity", "user_category_affinity")


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
