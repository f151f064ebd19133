"""The default configuration is never below plain EASE at its default λ (issue 15).

Plain EASE = binary interactions, λ = 200, as a user of the paper's code would run it. The
worlds come from the generator (implicit, several event types; no default was fitted to
them); the full-size comparison is in benchmarks/bench_quality.py and docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tastebud.data.interactions import from_table
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.evaluation import make_splitter
from tastebud.training.configuration import Configuration, fit_configuration
from tastebud.training.holdout import Holdout
from tastebud.training.pipeline import default_configuration

PLAIN_EASE = Configuration(
    {"transform": "binary", "liked_rating": 0.0, "unliked_rating_weight": 1.0},
    "ease",
    {"l2": 200.0},
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    folder: Path = tmp_path_factory.mktemp("world")
    generate_world(WorldSpec(users=600, items=500, days=21, seed=4), folder)
    table = pq.read_table(folder / "events.parquet")
    return table.select(["user_id", "item_id", "event_type", "value", "timestamp"])


def ndcg(table: pa.Table, protocol: str, configuration: Configuration) -> float:
    options = {"random_state": 0} if protocol == "random-holdout" else {}
    split = make_splitter(protocol, fraction=0.2, **options)(from_table(table).table)
    model, _ = fit_configuration(from_table(split.train), configuration)
    return Holdout.build(model, split.test).ndcg(model, 10)


def test_default_is_not_below_plain_ease_on_multi_event_data(world: pa.Table) -> None:
    default = default_configuration(500)
    assert ndcg(world, "user-temporal", default) >= ndcg(world, "user-temporal", PLAIN_EASE)


def test_default_is_not_below_plain_ease_on_play_counts_and_pairs(world: pa.Table) -> None:
    """The same world as a play-count file without time, and as plain pairs."""
    plays = world.filter(pc.equal(world["event_type"], "play"))
    counts = plays.group_by(["user_id", "item_id"]).aggregate([("event_type", "count")])
    counts = pa.table({"user_id": counts["user_id"], "item_id": counts["item_id"],
                       "weight": counts["event_type_count"].cast(pa.float64())})  # fmt: skip
    default = default_configuration(500)
    assert ndcg(counts, "random-holdout", default) >= ndcg(counts, "random-holdout", PLAIN_EASE)
    pairs = counts.select(["user_id", "item_id"])
    assert ndcg(pairs, "random-holdout", default) == pytest.approx(
        ndcg(pairs, "random-holdout", PLAIN_EASE), abs=1e-9
    )  # on pairs the default is plain EASE
