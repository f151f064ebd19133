"""The training matrix on Spark: per (user, item, day) parts on the executors, assembled
on the driver, equal to ``build_matrix`` over the same events (vocabularies, preferences,
rejections, per-item daily weights, stats and snapshot), with and without time decay,
confidence transforms and minimum counts."""

from __future__ import annotations

import numpy as np
import pytest
from test_spark_engine import world  # noqa: F401  (the fixture)
from test_spark_parity import AS_OF

from tastebud.config import Settings
from tastebud.data.interactions import InteractionsError
from tastebud.data.matrix import InteractionMatrix, MatrixOptions
from tastebud.engines import EventSource
from tastebud.engines.local import LocalEngine
from tastebud.engines.spark import SparkEngine
from tastebud.stores import Stores

OPTIONS = [
    MatrixOptions(),
    MatrixOptions(
        half_life_days=3.0,
        transform="log",
        alpha=2.0,
        min_user_interactions=3,
        min_item_interactions=2,
    ),
]


def assert_same(local: InteractionMatrix, spark: InteractionMatrix) -> None:
    assert local.users == spark.users and local.items == spark.items
    assert local.shape == spark.shape and local.nnz == spark.nnz
    assert (local.matrix != 0).nnz == (spark.matrix != 0).nnz
    np.testing.assert_allclose(local.matrix.toarray(), spark.matrix.toarray(), rtol=1e-6)
    assert (local.negatives != spark.negatives).nnz == 0
    assert local.item_days.shape == spark.item_days.shape
    np.testing.assert_allclose(
        local.item_days.toarray(), spark.item_days.toarray(), rtol=1e-9, atol=1e-12
    )
    assert (local.day0, local.reference_time) == (spark.day0, spark.reference_time)
    assert local.snapshot == spark.snapshot and local.stats == spark.stats


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "decay-log-min-counts"])
def test_the_matrix_on_spark_equals_build_matrix(
    world: tuple[Settings, Stores],  # noqa: F811
    options: MatrixOptions,
) -> None:
    settings, stores = world
    source = EventSource(stores.events)
    types = settings.events.types
    local = LocalEngine().interaction_matrix(source, AS_OF, options=options, event_types=types)
    spark = SparkEngine.from_settings(settings).interaction_matrix(
        source, AS_OF, options=options, event_types=types
    )
    assert local.nnz > 1_000
    assert_same(local, spark)


def test_unknown_event_types_are_refused_as_locally(
    world: tuple[Settings, Stores],  # noqa: F811
) -> None:
    settings, stores = world
    types = {name: spec for name, spec in settings.events.types.items() if name != "play"}
    source = EventSource(stores.events)
    for engine in (LocalEngine(), SparkEngine.from_settings(settings)):
        with pytest.raises(InteractionsError, match=r"unknown event types \['play'\]"):
            engine.interaction_matrix(source, AS_OF, options=MatrixOptions(), event_types=types)
