"""A small served world for the ranking tests: a catalog with creators, categories and ages,
an ALS model trained on planted taste clusters and registered as ``production``; and the
``world`` and ``service`` fixtures over it (a test module takes them with
``world, service = serving_world.world, serving_world.service``).

Users ``u{n}`` belong to cluster n % 3 and items ``i{n}`` to cluster n % 3 (categories rock,
jazz, pop); items ``new{n}`` are in the catalog but have no interactions."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from interaction_data import clustered_log

from tastebud.config import Settings, load_settings
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.models import ALSRecommender, Recommender
from tastebud.ranking.recommender import RecommendationService
from tastebud.registry import ModelRegistry, open_registry
from tastebud.schemas import Item
from tastebud.stores import Stores, open_stores

CATEGORIES = ("rock", "jazz", "pop")
N_ITEMS = 60
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class World:
    settings: Settings
    stores: Stores
    registry: ModelRegistry
    model: Recommender
    version: str
    trained_until: datetime


def catalog_items(n_items: int = N_ITEMS, cold: int = 6) -> list[Item]:
    items = [
        Item(
            item_id=f"i{n}",
            title=f"Song {n}",
            creator=f"artist{n % 12}",
            categories=[CATEGORIES[n % 3]],
            created_at=NOW - timedelta(days=30 + n),
        )
        for n in range(n_items)
    ]
    items += [
        Item(
            item_id=f"new{n}",
            title=f"Song {100 + n}",
            creator=f"newcomer{n}",
            categories=[CATEGORIES[n % 3]],
            created_at=NOW - timedelta(days=1),
        )
        for n in range(cold)
    ]
    return items


def settings_for(home: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "home": home,
        "online_url": "memory://",
        "gateway": {"key_cache_seconds": 0.0},
    }
    options.update(overrides)
    return load_settings(**options)


def register(
    registry: ModelRegistry, model: Recommender, trained_until: datetime, alias: str = "production"
) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        folder = model.save(Path(scratch) / "model")
        factors = getattr(model, "item_factors_", None)
        manifest = {
            "model": model.name,
            "user_count": len(model.users_),
            "item_count": len(model.items_),
            "embedding_dim": None if factors is None else int(factors.shape[1]),
            "params": {},
            "time_range": {"start": trained_until - timedelta(days=30), "end": trained_until},
        }
        return registry.register(folder, manifest, aliases=[alias]).model_version


def fitted_model(seed: int = 0) -> Recommender:
    log = clustered_log(seed=seed)
    matrix = build_matrix(log, MatrixOptions())
    return ALSRecommender(factors=16, iterations=15, use_gpu=False, random_state=seed).fit(matrix)


def build_world(home: Path, **overrides: Any) -> World:
    settings = settings_for(home, **overrides)
    stores = open_stores(settings)
    stores.catalog.upsert_items(catalog_items())
    registry = open_registry(settings, stores.artifacts)
    model = fitted_model()
    # The planted log's timestamps lie in Nov 2023; anything later is new to the model.
    trained_until = datetime(2023, 12, 31, tzinfo=UTC)
    version = register(registry, model, trained_until)
    return World(settings, stores, registry, model, version, trained_until)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = build_world(tmp_path)
    yield world
    world.stores.close()


@pytest.fixture
def service(world: World) -> Iterator[RecommendationService]:
    service = RecommendationService(world.settings, world.stores)
    service.start(watch=False)
    yield service
    service.stop()


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def events_table(rows: list[tuple[str, str, str]], at: datetime | None = None) -> pa.Table:
    """Gateway-shaped events (user, item, event type), one second apart from ``at``."""
    start = at or datetime.now(UTC)
    return pa.table(
        {
            "event_id": [f"ev-{uuid.uuid4().hex}" for _ in rows],
            "user_id": [user for user, _, _ in rows],
            "item_id": [item for _, item, _ in rows],
            "event_type": [kind for _, _, kind in rows],
            "timestamp": pa.array(
                [start + timedelta(seconds=i) for i in range(len(rows))],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def cluster(item_id: str) -> int:
    return int(item_id.removeprefix("new").removeprefix("i")) % 3
