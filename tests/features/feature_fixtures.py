"""Fixtures shared by the feature-store tests (imported, not a conftest: other folders have
their own). Views here are small test manifests, not the built-in ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tastebud.features.offline import OfflineStore
from tastebud.features.store import open_offline_store
from tastebud.features.views import FeatureRegistry, FeatureView

TEST_MANIFEST = """
views:
  - name: user_stats
    version: 1.0.0
    entity: user
    description: test view
    owner: tests
    ttl_seconds: 86400
    source: {kind: python, transform: "tests_transforms:none"}
    features:
      - {name: clicks, dtype: int64, description: clicks}
      - {name: score, dtype: float64, description: score}
      - {name: seen_at, dtype: timestamp, description: when}
      - {name: tags, dtype: string_list, description: tags}
      - {name: vector, dtype: float_list, description: a vector}
  - name: item_stats
    version: 1.0.0
    entity: item
    description: test view
    owner: tests
    ttl_seconds: 3600
    source: {kind: python, transform: "tests_transforms:none"}
    features:
      - {name: price, dtype: float64, description: price}
      - {name: label, dtype: string, description: label}
      - {name: active, dtype: bool, description: active}
"""


@pytest.fixture
def test_registry(tmp_path: Path) -> FeatureRegistry:
    path = tmp_path / "manifests" / "test.yaml"
    path.parent.mkdir()
    path.write_text(TEST_MANIFEST)
    return FeatureRegistry.load([path], builtin=False)


@pytest.fixture
def user_view(test_registry: FeatureRegistry) -> FeatureView:
    return test_registry.view("user_stats")


@pytest.fixture
def item_view(test_registry: FeatureRegistry) -> FeatureView:
    return test_registry.view("item_stats")


@pytest.fixture(params=["parquet", "postgres"])
def offline_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "parquet":
        return f"parquet://{tmp_path / 'offline'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def offline(offline_url: str) -> Iterator[OfflineStore]:
    store = open_offline_store(offline_url)
    yield store
    store.close()
