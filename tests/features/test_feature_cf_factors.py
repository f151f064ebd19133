"""The CF factor views read the registry's production model (issue 4's registry)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from interaction_data import clustered_log

from tastebud.config import load_settings
from tastebud.data.matrix import MatrixOptions
from tastebud.features.compute import compute_view, context_for
from tastebud.features.views import FeatureRegistry
from tastebud.registry import open_registry
from tastebud.stores import open_stores
from tastebud.training.configuration import Configuration
from tastebud.training.pipeline import register_training, train


def test_factors_come_from_the_production_model(home: Path) -> None:
    settings = load_settings(online_url="memory://")
    registry = FeatureRegistry.load()
    now = datetime.now(UTC)
    with open_stores(settings) as stores:
        users = registry.view("user_cf_factors")
        empty = compute_view(context_for(users, now, settings, stores))
        assert empty.num_rows == 0  # no production model yet: nothing, no error
        log = clustered_log(n_users=60, n_items=30)
        configuration = Configuration(
            MatrixOptions().model_dump(),
            "als",
            {"factors": 8, "iterations": 3, "regularization": 0.05, "alpha": 2.0},
        )
        result = train(log, configuration=configuration)
        models = open_registry(settings, stores.artifacts)
        version = register_training(result, log, models, aliases=["production"])
        table = compute_view(context_for(users, now, settings, stores))
        items = compute_view(context_for(registry.view("item_cf_factors"), now, settings, stores))
    model = result.model
    assert table.num_rows == 60 and items.num_rows == 30
    assert set(table.column("model_version").to_pylist()) == {version.model_version}
    row = table.column("entity_id").to_pylist().index("u7")
    expected = model.user_factors_[model.users_.index(["u7"])[0]]
    np.testing.assert_allclose(table.column("factors")[row].as_py(), expected, rtol=1e-6)


def test_content_embeddings_come_from_the_embedding_registry(home: Path) -> None:
    from tastebud.content.catalog_embedding import embed_catalog
    from tastebud.schemas import Item

    catalog = [
        Item(
            item_id=f"i{n}",
            title=f"{'Loud rock anthem' if n % 2 else 'Smooth jazz ballad'} {n}",
            creator=f"artist-{n % 3}",
            categories=["rock" if n % 2 else "jazz"],
            attributes={"energy": 0.2 + n / 20},
        )
        for n in range(12)
    ]
    settings = load_settings(online_url="memory://")
    view = FeatureRegistry.load().view("item_content_embedding")
    now = datetime.now(UTC)
    with open_stores(settings) as stores:
        assert compute_view(context_for(view, now, settings, stores)).num_rows == 0
        stores.catalog.upsert_items(catalog)
        outcome = embed_catalog(settings, stores)
        table = compute_view(context_for(view, now, settings, stores))
    assert outcome.version is not None and table.num_rows == 12
    assert set(table.column("embedding_version").to_pylist()) == {outcome.version.model_version}
    vectors = np.array(table.column("embedding").to_pylist())
    assert vectors.shape == (12, settings.content.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
