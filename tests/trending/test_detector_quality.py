"""Trending quality on synthetic worlds with known injected trends and a daily cycle.

Protocol: ``tastebud.trending.evaluation`` (the detector every 12 hours from the first full
window to the end of the world; flags against the injected trends in truth.json).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tastebud.config import TrendingSettings, default_event_types
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.trending.detector import StaleDataError, check_freshness, detect, engagement
from tastebud.trending.evaluation import LoadedWorld, load_world, trend_recovery

STEP_HOURS = 12
WEIGHTS = {name: spec.weight for name, spec in default_event_types().items()}


def _load(path: Path) -> tuple[dict[str, Any], pa.Table, pa.Table]:
    world = load_world(path, WEIGHTS)
    return world.truth, world.events, world.items


@pytest.fixture(scope="module")
def trending_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, pa.Table, pa.Table]:
    path = tmp_path_factory.mktemp("trending-world")
    generate_world(WorldSpec(users=2000, items=1000, days=28, seed=2, trending_items=30), path)
    return _load(path)


@pytest.fixture(scope="module")
def quiet_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, pa.Table, pa.Table]:
    """No injected trends: every flag is a false positive."""
    path = tmp_path_factory.mktemp("quiet-world")
    generate_world(WorldSpec(users=3000, items=300, days=10, seed=5, trending_items=0), path)
    return _load(path)


def evaluate(world: tuple[Any, pa.Table, pa.Table], params: TrendingSettings) -> dict[str, float]:
    truth, events, items = world
    result = trend_recovery(LoadedWorld(truth, events, items), params, STEP_HOURS)
    return result.as_dict()


def test_precision_and_recall_at_default_settings(trending_world: Any) -> None:
    result = evaluate(trending_world, TrendingSettings())
    assert result["eligible"] >= 15  # enough trends for the rates to mean something
    assert result["precision"] >= 0.9, result
    assert result["recall"] >= 0.8, result
    assert result["false_positive_rate"] < 0.001, result


def test_a_world_without_trends_has_nothing_trending(quiet_world: Any) -> None:
    truth, events, items = quiet_world
    last_day = datetime.fromisoformat(truth["period"]["end"]) - timedelta(days=1)
    flagged = [
        detect(
            events, last_day + timedelta(hours=h), TrendingSettings(), item_created=items
        ).items.num_rows
        for h in range(2, 26, 2)
    ]
    assert sum(flagged) == 0  # including the evening peak, hour by hour


def test_the_seasonality_guard_expects_the_evening_peak(quiet_world: Any) -> None:
    """With a 3-hour window at the evening peak, every item is ~2.4x its average hour:
    without the guard that reads as a surge and popular items get flagged; with it, the
    same hours of previous days predict the peak and lifts sit around 1."""
    truth, events, items = quiet_world
    peak = datetime.fromisoformat(truth["period"]["end"]) - timedelta(hours=2)  # 22:00 UTC
    assert np.argmax(truth["seasonality"]["hourly"]) in (19, 20, 21)
    results = {}
    for guard in (True, False):
        params = TrendingSettings(recent_hours=3, seasonality=guard)
        found = detect(events, peak, params, item_created=items, keep_all=True).items
        results[guard] = (
            float(np.median(found["lift"].to_numpy())),
            int(np.sum(found["trending"].to_numpy())),
        )
    (lift_on, flagged_on), (lift_off, flagged_off) = results[True], results[False]
    assert 0.8 <= lift_on <= 1.25 and lift_off >= 2.0
    assert flagged_off >= 3 * max(flagged_on, 1)


def test_new_items_are_not_trending_just_for_being_new(trending_world: Any) -> None:
    truth, events, items = trending_world
    created = dict(zip(items["item_id"].to_pylist(), items["created_at"].to_pylist(), strict=True))
    trend_items = {t["item_id"] for t in truth["trending"]}
    start = datetime.fromisoformat(truth["period"]["start"])
    for day in (10, 16, 22):
        moment = start + timedelta(days=day)
        flagged = detect(events, moment, TrendingSettings(), item_created=items).items
        for item in set(flagged["item_id"].to_pylist()) - trend_items:
            assert created[item] < moment - timedelta(days=2), item


def test_freshness_guard() -> None:
    params = TrendingSettings(max_staleness_hours=6)
    as_of = datetime(2025, 1, 10, tzinfo=UTC)
    check_freshness(as_of - timedelta(hours=5), as_of, params)
    with pytest.raises(StaleDataError, match="older than 6 h"):
        check_freshness(as_of - timedelta(hours=7), as_of, params)
    with pytest.raises(StaleDataError, match="none"):
        check_freshness(None, as_of, params)


def test_smoothing_and_support(trending_world: Any) -> None:
    truth, events, items = trending_world
    start = datetime.fromisoformat(truth["period"]["start"])
    moment = min(  # the end of the first trend that has a clean baseline
        datetime.fromisoformat(t["end"])
        for t in truth["trending"]
        if datetime.fromisoformat(t["start"]) >= start + timedelta(days=7)
    )
    plain = detect(events, moment, TrendingSettings(), item_created=items)
    smoothed = detect(
        events, moment, TrendingSettings(smoothing_half_life_hours=6.0), item_created=items
    )
    assert plain.items["score"].to_pylist() != smoothed.items["score"].to_pylist()
    strict = detect(events, moment, TrendingSettings(min_users=10_000), item_created=items)
    assert strict.final_count == 0 and strict.candidate_count == 0
    assert plain.candidate_count >= plain.final_count > 0
    scores = plain.items["score"].to_pylist()
    assert scores == sorted(scores, reverse=True)
    assert plain.lists["*"][0]["rank"] == 1


def test_empty_input_finds_nothing() -> None:
    empty = engagement(_empty_events(), WEIGHTS)
    result = detect(empty, datetime(2025, 1, 10, tzinfo=UTC), TrendingSettings())
    assert (result.final_count, result.candidate_count, result.events) == (0, 0, 0)
    assert result.newest_event is None and result.lists == {"*": []}


def _empty_events() -> pa.Table:
    from tastebud.schemas import EVENT_SCHEMA

    return EVENT_SCHEMA.empty_table()


if __name__ == "__main__":  # print the measured rates (used for docs/benchmarks.md)
    import sys
    import tempfile

    STEP_HOURS = int(sys.argv[1])
    for seed in map(int, sys.argv[2:] or ["2"]):
        with tempfile.TemporaryDirectory() as folder:
            spec = WorldSpec(users=2000, items=1000, days=28, seed=seed, trending_items=30)
            generate_world(spec, Path(folder))
            print(seed, evaluate(_load(Path(folder)), TrendingSettings()))
