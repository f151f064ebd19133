"""A small generated world, a store built from it (optionally with a problem seeded into
its last day), and a production model trained on all but that last day."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tastebud.config import Settings, load_settings
from tastebud.data.interactions import read_event_store
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.registry import open_registry
from tastebud.stores import EventQuery, Stores, open_stores
from tastebud.training.configuration import Configuration
from tastebud.training.pipeline import register_training, train

END = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday, midnight
# 2000 users over 8 days: ~80k events, peak hours of ~900 (enough for a one-hour drop of
# half to be significant against the hourly counts' own spread). No trends: a trending item
# is a real drift, and this world is meant to be clean.
SPEC = WorldSpec.ending(END, users=2000, items=300, days=8, seed=3, trending_items=0)
TRAINED_UNTIL = END - timedelta(days=1)

Seed = Callable[[pa.Table], pa.Table]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("quality-world")
    generate_world(SPEC, folder)
    return folder


def last_day(table: pa.Table, hours: float = 24.0) -> pa.ChunkedArray:
    """Mask of the events in the last ``hours`` before END."""
    start = pa.scalar(END - timedelta(hours=hours), pa.timestamp("us", tz="UTC"))
    return pc.greater_equal(table.column("timestamp"), start)


@pytest.fixture
def build(world: Path, tmp_path: Path) -> Iterator[Callable[..., tuple[Stores, Settings]]]:
    """``build(seed)``: a store of the world's events (``seed`` applied to them first) and
    its catalog, with a production model trained on the events before the last day."""
    opened: list[Stores] = []

    def make(
        seed: Seed | None = None,
        *,
        model: bool = True,
        database_url: str | None = None,
        **quality: object,
    ):
        settings = load_settings(home=tmp_path / "home", database_url=database_url, quality=quality)
        stores = open_stores(settings)
        opened.append(stores)
        events = pq.read_table(world / "events.parquet")
        stores.events.append_arrow(seed(events) if seed else events)
        from tastebud.data.bulk_load import ingest_sources
        from tastebud.data.loaders.datasets import dataset_sources

        items = [source for source in dataset_sources(world) if source.kind == "items"]
        ingest_sources(items, stores, settings)
        if model:
            log = read_event_store(stores.events, EventQuery(end=TRAINED_UNTIL))
            recipe = Configuration(matrix={}, model="popularity", params={})
            result = train(log, configuration=recipe)
            registry = open_registry(settings, stores.artifacts)
            register_training(result, log, registry, aliases=["production"])
        return stores, settings

    yield make
    for stores in opened:
        stores.close()
