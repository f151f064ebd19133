"""Trending finds the trends injected into the quickstart world (``make run``'s), measured
by ``tastebud.trending.evaluation``: here every 6 hours (the benchmark,
``benchmarks/bench_trending.py``, runs it hourly like the job, over five seeds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tastebud.cli.quickstart import TRENDS
from tastebud.config import TrendingSettings, default_event_types
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.trending.detector import detect
from tastebud.trending.evaluation import LoadedWorld, active_trends, load_world, trend_recovery

WEIGHTS = {name: spec.weight for name, spec in default_event_types().items()}
END = datetime(2026, 3, 4, 15, 19, tzinfo=UTC)  # any minute: worlds end when they are made


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> LoadedWorld:
    spec = WorldSpec.ending(END, users=2000, items=3000, days=30, seed=0, **TRENDS)
    folder = tmp_path_factory.mktemp("quickstart-world")
    generate_world(spec, Path(folder))
    return load_world(Path(folder), WEIGHTS)


def test_trends_are_found_with_precision_and_recall(world: LoadedWorld) -> None:
    result = trend_recovery(world, TrendingSettings(), step_hours=6)
    assert result.eligible >= 5, result
    assert result.precision >= 0.9, result
    assert result.recall >= 0.8, result


def test_the_trends_of_the_last_day_trend_at_the_end(world: LoadedWorld) -> None:
    """What quickstart shows: the job's last hourly tick flags the trends that started on
    the last day, and nothing that was not injected."""
    as_of = (END - timedelta(minutes=END.minute)).replace(second=0)  # the hourly tick
    flagged = set(
        detect(world.events, as_of, TrendingSettings(), item_created=world.items)
        .items.column("item_id")
        .to_pylist()
    )
    last_day = {t.item_id for t in world.trends if t.start == END - timedelta(days=1)}
    assert len(last_day) == TRENDS["trending_at_end"]
    assert last_day <= flagged
    assert flagged <= active_trends(world.trends, as_of, TrendingSettings().recent_hours)
