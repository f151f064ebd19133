"""The ``recommendations`` job on Spark: users ranked on the executors (``mapPartitions``)
with the broadcast model, lists written to Redis in bounded batches from the executors, the
same lists the local job stores; and the settings it refuses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SPARK_MASTER
from ranking.serving_world import World, build_world

from tastebud.config import Settings
from tastebud.engines import EngineError
from tastebud.jobs.base import JobContext
from tastebud.jobs.definitions import recommendations
from tastebud.ranking.precomputed import PrecomputedList, precomputed_key


def run_job(settings: Settings, world: World) -> dict[str, Any]:
    now = datetime.now(UTC)
    context = JobContext(
        job_name="recommendations",
        run_id=uuid.uuid4().hex,
        attempt=1,
        start=now - timedelta(hours=1),
        end=now,
        settings=settings,
        stores=world.stores,
    )
    return recommendations.run(context)


def on(settings: Settings, engine: str) -> Settings:
    jobs = settings.jobs.model_copy(update={"engines": {"recommendations": engine}})
    return settings.model_copy(update={"jobs": jobs})


def stored(world: World, users: list[str]) -> dict[str, PrecomputedList]:
    keys = [precomputed_key(user) for user in users]
    lists = {}
    for user, raw in zip(users, world.stores.online.get_many(keys), strict=True):
        assert raw is not None, user
        decoded = PrecomputedList.decode(raw)
        assert decoded is not None
        lists[user] = decoded
    world.stores.online.delete_many(keys)
    return lists


def test_lists_ranked_on_spark_are_the_lists_ranked_locally(
    tmp_path: Path, redis_url: str, spark: Any
) -> None:
    # No recency boost: it moves with the clock, and the two runs are seconds apart.
    world = build_world(
        tmp_path / "home",
        online_url=redis_url,
        spark_master=SPARK_MASTER,
        ranking={"recency": {"weight": 0.0}},
    )
    try:
        users = [str(user) for user in world.model.users_.ids.to_pylist()]
        local = run_job(on(world.settings, "local"), world)
        local_lists = stored(world, users)
        remote = run_job(on(world.settings, "spark"), world)
        spark_lists = stored(world, users)
    finally:
        world.stores.close()
    assert local["written"] == remote["written"] == len(users) > 0
    assert local["segments"] == remote["segments"]
    assert remote["model_version"] == world.version
    for user in users:
        mine, theirs = local_lists[user], spark_lists[user]
        assert mine.item_ids == theirs.item_ids, user
        assert (mine.model_version, mine.segment, mine.fingerprint) == (
            theirs.model_version,
            theirs.segment,
            theirs.fingerprint,
        )
        for left, right in zip(
            json.loads(mine.items_json), json.loads(theirs.items_json), strict=True
        ):
            assert left["score"] == pytest.approx(right["score"], rel=1e-9, abs=1e-12)


def test_spark_batch_scoring_needs_a_shared_online_store(tmp_path: Path, spark: Any) -> None:
    world = build_world(tmp_path / "home", spark_master=SPARK_MASTER)  # memory://
    try:
        with pytest.raises(EngineError, match="not memory://"):
            run_job(on(world.settings, "spark"), world)
    finally:
        world.stores.close()
