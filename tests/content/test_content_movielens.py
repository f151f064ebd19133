"""Content embeddings of the real MovieLens latest-small catalog (genres, top tags, titles,
release years): coverage over 80% and sensible neighbours. Skipped without the copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tastebud.config import Settings, load_settings
from tastebud.content.catalog_embedding import embed_catalog
from tastebud.content.similarity import ContentSimilarity
from tastebud.data.bulk_load import ingest_sources
from tastebud.data.loaders import open_sources
from tastebud.stores import Stores, open_stores


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(online_url="memory://")


@pytest.fixture
def stores(settings: Settings) -> Iterator[Stores]:
    with open_stores(settings) as opened:
        yield opened


@pytest.mark.movielens
def test_latest_small_catalog(movielens_dir: Path, settings: Settings, stores: Stores) -> None:
    folder = movielens_dir / "ml-latest-small"
    if not (folder / "movies.csv").is_file():
        pytest.skip(f"no ml-latest-small under {movielens_dir}")
    ingest_sources(open_sources(folder), stores, settings)
    outcome = embed_catalog(settings, stores)
    assert outcome.version is not None and outcome.result.artifact is not None
    coverage = outcome.summary()["coverage"]
    assert coverage["items"] == 9742
    assert coverage["coverage_ratio"] >= 0.8
    index = ContentSimilarity.from_artifact(outcome.result.artifact)
    ids, _ = index.similar(["1"], k=20)  # Toy Story
    catalog = stores.catalog.get_items([i for i in ids[0] if i])
    animated = sum("Animation" in item.categories for item in catalog.values())
    assert animated >= 10
