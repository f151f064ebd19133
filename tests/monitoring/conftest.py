"""Two generated worlds over the same users and items but with different tastes, and a store
built from them: world A until ``SHIFT``, then world A again (a clean stream) or world B (the
world's tastes changed: a silent decay of the model trained on A)."""

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
from tastebud.training.pipeline import register_training, train

END = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday, midnight
SHIFT = END - timedelta(days=7)  # the production model is trained on the events before
CHECKED = SHIFT + timedelta(days=2)  # the first check: two days after the shift
RETRAINED = END - timedelta(days=2)  # the retrain: five days after it, two before the end
SIZE = {"users": 600, "items": 150, "days": 12, "trending_items": 0}


@pytest.fixture(scope="session")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for name, seed in (("a", 3), ("b", 8)):
        folder = tmp_path_factory.mktemp(f"monitoring-world-{name}")
        generate_world(WorldSpec.ending(END, seed=seed, **SIZE), folder)
        folders[name] = folder
    return folders


def _at(moment: datetime) -> pa.Scalar:
    return pa.scalar(moment, pa.timestamp("us", tz="UTC"))


def stream(
    worlds: dict[str, Path],
    after_shift: str,
    until: datetime = END,
    seed: Callable[[pa.Table], pa.Table] | None = None,
) -> pa.Table:
    """World A's events before SHIFT, then ``after_shift``'s (a or b) until ``until``,
    passed through ``seed`` (a seeded problem) if given."""
    first = pq.read_table(worlds["a"] / "events.parquet")
    first = first.filter(pc.less(first.column("timestamp"), _at(SHIFT)))
    then = pq.read_table(worlds[after_shift] / "events.parquet")
    keep = pc.and_(
        pc.greater_equal(then.column("timestamp"), _at(SHIFT)),
        pc.less(then.column("timestamp"), _at(until)),
    )
    then = then.filter(keep).cast(first.schema)
    return pa.concat_tables([first, seed(then).cast(first.schema) if seed else then])


@pytest.fixture
def build(
    worlds: dict[str, Path], tmp_path: Path
) -> Iterator[Callable[..., tuple[Stores, Settings]]]:
    """``build(after_shift)``: the store of ``stream(after_shift)`` with world A's catalog,
    and a production model (the default recipe) trained on the events before SHIFT."""
    opened: list[Stores] = []

    def make(
        after_shift: str = "a",
        *,
        until: datetime = END,
        model: bool = True,
        database_url: str | None = None,
        quality: dict[str, object] | None = None,
        seed: Callable[[pa.Table], pa.Table] | None = None,
        **monitoring: object,
    ) -> tuple[Stores, Settings]:
        # Two days judged (the default is one): a world of 600 users is too noisy for one day.
        monitoring.setdefault("eval_days", 2)
        settings = load_settings(
            home=tmp_path / "home",
            database_url=database_url,
            monitoring=monitoring,
            quality=quality or {},
            jobs={"train_auto": False},
        )
        stores = open_stores(settings)
        opened.append(stores)
        stores.events.append_arrow(stream(worlds, after_shift, until, seed))
        if model:
            log = read_event_store(stores.events, EventQuery(end=SHIFT))
            registry = open_registry(settings, stores.artifacts)
            register_training(train(log), log, registry, aliases=["production"])
        return stores, settings

    yield make
    for stores in opened:
        stores.close()
