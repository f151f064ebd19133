"""Precomputed lists: the ``recommendations`` job stores each known user's default list, and
the server serves it only while it is still what ranking would return now."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import serving_world
from api.gateway_testing import TestClient, make_keys
from serving_world import (
    World,
    build_world,
    events_table,
    fitted_model,
    register,
    settings_for,
)

from tastebud.api.app import create_app
from tastebud.config import Settings
from tastebud.jobs.base import JobContext
from tastebud.jobs.definitions import build_registry, recommendations
from tastebud.observability import metrics
from tastebud.ranking.pipeline import RankRequest
from tastebud.ranking.precomputed import PrecomputedList, precomputed_key
from tastebud.ranking.recommender import RecommendationService
from tastebud.stores import Stores, open_stores

K = 20  # serving.precomputed_k's default


# The shared fixtures (a conftest.py here would clash with the other test folders').
world, service = serving_world.world, serving_world.service


def run_job(world: World | tuple[Settings, Stores]) -> dict[str, Any]:
    settings, stores = (world.settings, world.stores) if isinstance(world, World) else world
    now = datetime.now(UTC)
    context = JobContext(
        job_name="recommendations",
        run_id=uuid.uuid4().hex,
        attempt=1,
        start=now - timedelta(hours=1),
        end=now,
        settings=settings,
        stores=stores,
    )
    return recommendations.run(context)


def outcomes() -> dict[str, float]:
    names = (
        "hit",
        "missing",
        "stale_activity",
        "stale_model",
        "stale_settings",
        "expired",
        "inactive_item",
        "unreadable",
    )
    return {
        name: metrics.registry.get_sample_value(
            "tastebud_reco_precomputed_requests_total", {"outcome": name}
        )
        or 0.0
        for name in names
    }


def counted(before: dict[str, float]) -> dict[str, float]:
    after = outcomes()
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def listed(service: RecommendationService, user: str, **options: Any) -> tuple[list[str], bool]:
    served = service.recommend(user, RankRequest(**{"k": K, **options}))
    return [item.item_id for item in served.ranked.items], served.precomputed


def test_the_job_stores_every_known_users_list_and_the_server_serves_it(
    world: World, service: RecommendationService
) -> None:
    summary = run_job(world)
    users = len(world.model.users_)
    assert summary["model_version"] == world.version
    assert summary["users"] == users and summary["written"] == users
    assert summary["skipped_degraded"] == 0 and summary["k"] == K
    assert sum(summary["segments"].values()) == users

    before = outcomes()
    served = service.recommend("u0", RankRequest(k=K))
    assert served.precomputed and served.degraded == []
    assert counted(before) == {"hit": 1}
    # The stored list is the list the server ranks on demand, explanations included.
    fresh, _ = service.compute("u0", RankRequest(k=K))
    assert [(i.item_id, i.explanation, i.sources) for i in served.ranked.items] == [
        (i.item_id, i.explanation, i.sources) for i in fresh.ranked.items
    ]
    assert served.ranked.model_version == world.version and served.ranked.segment == "warm"
    quiet = service.recommend("u0", RankRequest(k=K, explain=False))
    assert quiet.precomputed and all(item.explanation is None for item in quiet.ranked.items)


def test_other_request_shapes_are_ranked_on_demand(
    world: World, service: RecommendationService
) -> None:
    run_job(world)
    stored, _ = listed(service, "u1")
    before = outcomes()
    shapes: list[dict[str, Any]] = [
        {"k": 10},
        {"category": "jazz"},
        {"exclude": frozenset({stored[0]})},
        {"now": time.time()},
    ]
    for options in shapes:
        assert not listed(service, "u1", **options)[1], options
    assert stored[0] not in listed(service, "u1", exclude=frozenset({stored[0]}))[0]
    override = service.settings.ranking.with_overrides({"mmr": {"diversity": 0.6}})
    served = service.recommend("u1", RankRequest(k=K), ranking=override)
    assert not served.precomputed
    assert counted(before) == {}  # none of them even looked
    assert service.recommend("u1", RankRequest(k=K), session_items=["i3"]).precomputed is False


def test_an_accepted_event_invalidates_the_stored_list(
    world: World, service: RecommendationService
) -> None:
    run_job(world)
    before_ids, precomputed = listed(service, "u2")
    assert precomputed
    top = before_ids[0]
    service.activity.record(events_table([("u2", top, "play")]))
    before = outcomes()
    after_ids, precomputed = listed(service, "u2")
    assert not precomputed and top not in after_ids
    assert counted(before) == {"stale_activity": 1}
    # A late event (timestamp older than the newest) invalidates it as well.
    run_job(world)
    assert listed(service, "u2")[1]
    late = datetime.now(UTC) - timedelta(days=3)
    service.activity.record(events_table([("u2", before_ids[1], "play")], at=late))
    after_ids, precomputed = listed(service, "u2")
    assert not precomputed and before_ids[1] not in after_ids


def test_a_new_model_version_or_settings_bypass_the_stored_lists(
    world: World, service: RecommendationService
) -> None:
    run_job(world)
    assert listed(service, "u3")[1]
    version = register(world.registry, fitted_model(seed=1), world.trained_until)
    assert service.refresh()
    before = outcomes()
    served = service.recommend("u3", RankRequest(k=K))
    assert not served.precomputed and served.ranked.model_version == version
    assert counted(before) == {"stale_model": 1}

    alpha = world.settings.ranking.with_overrides({"blend": {"alpha": 0.5}})
    changed = world.settings.model_copy(update={"ranking": alpha})
    other = RecommendationService(changed, world.stores)
    other.start(watch=False)
    try:
        run_job(world)  # lists for the new version, ranked with the configured settings
        assert listed(service, "u3")[1]
        before = outcomes()
        assert not listed(other, "u3")[1]
        assert counted(before) == {"stale_settings": 1}
    finally:
        other.stop()


def test_old_inactive_or_unreadable_lists_are_not_served(
    world: World, service: RecommendationService
) -> None:
    run_job(world)
    online = world.stores.online
    key = precomputed_key("u4")
    raw = online.get(key)
    assert raw is not None
    stored = PrecomputedList.decode(raw)
    assert stored is not None
    old = replace(
        stored, ranked_at=time.time() - world.settings.serving.precomputed_max_age_seconds
    )
    online.set(key, old.encode())
    before = outcomes()
    assert not listed(service, "u4")[1]
    assert counted(before) == {"expired": 1}

    # A readable header over damaged items: ranked on demand all the same.
    online.set(key, raw.partition(b"\n")[0] + b"\n[{oops}]")
    items, precomputed = listed(service, "u4")
    assert not precomputed and items == [i.item_id for i in stored.ranked().items]

    online.set(key, raw)
    first = stored.item_ids[0]
    item = world.stores.catalog.get_item(first)
    assert item is not None
    world.stores.catalog.upsert_items([item.model_copy(update={"active": False})])
    service.lifecycle.expire_catalog()  # the next refresh rereads the catalog
    assert service.refresh()
    before = outcomes()
    items, precomputed = listed(service, "u4")
    assert not precomputed and first not in items
    assert counted(before) == {"inactive_item": 1}

    online.set(key, b"{not json")
    before = outcomes()
    items, precomputed = listed(service, "u4")
    assert not precomputed and len(items) == K
    assert counted(before) == {"unreadable": 1}


def test_the_job_skips_without_a_model_or_when_turned_off(tmp_path: Path) -> None:
    world = build_world(tmp_path / "off", serving={"precomputed": False})
    try:
        assert run_job(world) == {"skipped": "serving.precomputed is off"}
    finally:
        world.stores.close()
    settings = settings_for(tmp_path / "empty")
    with open_stores(settings) as stores:
        assert run_job((settings, stores)) == {"skipped": "no production model yet"}
    definition = build_registry().runnable("recommendations")
    assert "10 * * * *" in str(definition.schedule) and definition.reason is None


def test_users_nobody_knows_share_one_list_until_they_act(
    world: World, service: RecommendationService
) -> None:
    first = service.recommend("stranger1", RankRequest(k=K))
    assert first.ranked.segment == "unknown" and not first.precomputed
    before = outcomes()
    second = service.recommend("stranger2", RankRequest(k=K))
    assert second is first  # ranked once, shared
    assert counted(before) == {"missing": 1}
    service.activity.record(events_table([("stranger3", "i4", "play")]))
    acted = service.recommend("stranger3", RankRequest(k=K))
    assert acted is not first and acted.ranked.segment == "cold"
    assert "i4" not in [item.item_id for item in acted.ranked.items]
    assert service.recommend("stranger4", RankRequest(k=K, explain=False)) is not first


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_http_answers_from_stored_lists_match_on_demand_ones(
    tmp_path: Path, online: str, redis_url: str
) -> None:
    """SQLite lookups run on the event loop (the items go out as stored); Redis lookups in
    a worker thread. Either way the answer is the on-demand one."""
    world = build_world(tmp_path, online_url=None if online == "sqlite" else redis_url)
    keys = make_keys(world.stores.database)
    try:
        run_job(world)
        with TestClient(create_app(world.settings), raise_server_exceptions=True) as http:
            service = http.app.state.recommendations  # type: ignore[attr-defined]
            assert service.inline_lookups is (online == "sqlite")
            headers = {"X-API-Key": keys["read"]}
            # Ranked as of the job's moment: the recency boost of the world's (real-time
            # dated) items moves with the clock, ~1e-7 a second, enough to change a score's
            # sixth decimal between the job and the check on a busy machine.
            raw = world.stores.online.get(precomputed_key("u5"))
            assert raw is not None
            ranked_at = PrecomputedList.decode(raw).ranked_at  # type: ignore[union-attr]
            for explain, metadata in (("true", "true"), ("false", "true"), ("true", "false")):
                before = outcomes()
                response = http.get(
                    f"/v1/users/u5/recommendations?k={K}&explain={explain}&metadata={metadata}",
                    headers=headers,
                )
                assert response.status_code == 200 and counted(before) == {"hit": 1}
                request = RankRequest(k=K, explain=explain == "true", now=ranked_at)
                fresh, _ = service.compute("u5", request)
                described = {"title", "creator"} if metadata == "true" else set()
                expected = {
                    "user_id": "u5",
                    "items": [
                        {
                            "item_id": item.item_id,
                            "score": item.score,
                            "sources": item.sources,
                            "explanation": item.explanation,
                            **{name: getattr(item, name) for name in described},
                        }
                        for item in fresh.ranked.items
                    ],
                    "model_version": world.version,
                    "degraded": False,
                    "degraded_reasons": [],
                    "segment": "warm",
                    "experiment": None,
                    "variant": None,
                }
                body = response.json()
                assert len(body.pop("list_id")) == 36  # a new uuid per served list
                assert body == expected
    finally:
        world.stores.online.delete_many([precomputed_key(f"u{n}") for n in range(200)])
        world.stores.close()
