"""The ranking pipeline through RecommendationService over real embedded stores: warm, cold
and unknown users, real-time events, filters, content candidates for new items, published
lists and explanations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import serving_world
from serving_world import NOW, World, cluster, events_table

from tastebud.content.catalog_embedding import embed_catalog
from tastebud.features.store import open_feature_store
from tastebud.jobs.outputs import publish_lists
from tastebud.ranking.pipeline import RankRequest
from tastebud.ranking.recommender import RecommendationService, UnknownCategory, UnknownItem
from tastebud.schemas import Item

PLAIN = {"candidates": {"fresh": 0}, "recency": {"weight": 0.0}}


# The shared fixtures (a conftest.py here would clash with the other test folders').
world, service = serving_world.world, serving_world.service


def ids(service: RecommendationService, user: str | None, **options: object) -> list[str]:
    ranking = options.pop("ranking", None)
    request = RankRequest(**options)  # type: ignore[arg-type]
    settings = service.settings.ranking.with_overrides(ranking)  # type: ignore[arg-type]
    served = service.recommend(user, request, ranking=settings)
    return [item.item_id for item in served.ranked.items]


def test_a_warm_user_gets_their_taste_and_nothing_they_consumed(
    service: RecommendationService, world: World
) -> None:
    served = service.recommend("u0", RankRequest(k=10))
    ranked = served.ranked
    assert ranked.segment == "warm" and ranked.model_version == world.version
    assert served.degraded == []
    listed = [item.item_id for item in ranked.items]
    assert len(listed) == 10
    assert cluster(listed[0]) == 0
    consumed = world.model.seen_[world.model.users_.index_of("u0")].indices
    assert not set(world.model.items_.id_of(consumed)) & set(listed)
    assert all("cf" in item.sources for item in ranked.items[:3])
    assert ranked.timings_ms["total"] > 0
    # Without diversity, caps and recency the list is the model's own ranking.
    plain = {**PLAIN, "mmr": {"enabled": False}, "creator_cap": {"enabled": False}}
    expected, _ = world.model.recommend(["u0"], k=10)
    assert ids(service, "u0", k=10, ranking=plain) == expected[0].tolist()


def test_mmr_makes_lists_more_diverse(service: RecommendationService) -> None:
    def served(diversity: float) -> tuple[float, list[str]]:
        ranking = service.settings.ranking.with_overrides({"mmr": {"diversity": diversity}})
        ranked = service.recommend("u0", RankRequest(k=10), ranking=ranking).ranked
        return ranked.diversity, [item.item_id for item in ranked.items]

    plain_diversity, plain = served(0.0)
    diverse_diversity, diverse = served(0.5)
    assert diverse_diversity > plain_diversity
    assert diverse[0] == plain[0]
    assert len({cluster(item) for item in diverse[:3]}) > len({cluster(item) for item in plain[:3]})


def test_an_unknown_user_gets_the_popular_list(service: RecommendationService) -> None:
    ranked = service.recommend("nobody", RankRequest(k=5), ranking=None).ranked
    assert ranked.segment == "unknown" and ranked.blend_ratio == 0
    assert len(ranked.items) == 5
    popular = [entry["item_id"] for entry in service.popular(None, 100)[0]]
    assert all(item.item_id in popular or "new" in item.sources for item in ranked.items)
    assert all(item.explanation for item in ranked.items)


def test_the_cf_weight_grows_with_a_new_users_interactions(
    service: RecommendationService,
) -> None:
    ratios = []
    for count in (1, 3, 5):
        user = f"fresh{count}"
        plays = [(user, f"i{3 * n}", "play") for n in range(count)]
        service.activity.record(events_table(plays))
        ranked = service.recommend(user, RankRequest(k=10)).ranked
        ratios.append((ranked.segment, round(ranked.blend_ratio, 3)))
    # No content embeddings here, so the personal part is CF alone: ramp = n / 5.
    assert ratios == [("cold", 0.2), ("cold", 0.6), ("warm", 1.0)]
    listed = ids(service, "fresh5", k=10, ranking=PLAIN)
    # Five plays of cluster 0. The fold-in weighs them as ALS trains (confidence alpha*r =
    # 2 each, not 1 + alpha*r), as a training user with five items would be: mostly, not
    # only, cluster 0 next to the popularity prior.
    assert sum(cluster(item) == 0 for item in listed[:5]) >= 4


def test_a_new_event_changes_the_next_list_without_retraining(
    service: RecommendationService,
) -> None:
    before = ids(service, "u0", k=10, ranking=PLAIN)
    top = before[0]
    # u0 likes cluster 0; now they play the top item and like six cluster-1 items.
    events = [("u0", top, "play")] + [("u0", f"i{3 * n + 1}", "like") for n in range(6)]
    service.activity.record(events_table(events))
    after = service.recommend("u0", RankRequest(k=10), ranking=None).ranked
    listed = [item.item_id for item in after.items]
    assert top not in listed  # consumed just now
    assert not {f"i{3 * n + 1}" for n in range(6)} & set(listed)
    assert sum(cluster(item) == 1 for item in listed) > sum(cluster(item) == 1 for item in before)
    liked = [item.explanation for item in after.items if cluster(item.item_id) == 1]
    assert any(text and text.startswith("because you liked Song ") for text in liked)


def test_negative_feedback_removes_an_item(service: RecommendationService) -> None:
    before = ids(service, "u1", k=5)
    service.activity.record(events_table([("u1", before[1], "dislike")]))
    assert before[1] not in ids(service, "u1", k=20)


def test_category_exclude_and_inactive_filters(
    service: RecommendationService, world: World
) -> None:
    jazz = ids(service, "u0", k=10, category="jazz")
    assert jazz and all(cluster(item) == 1 for item in jazz)
    top = ids(service, "u0", k=3)
    assert top[0] not in ids(service, "u0", k=10, exclude=frozenset({top[0]}))
    with pytest.raises(UnknownCategory):
        service.recommend("u0", RankRequest(category="polka"))
    world.stores.catalog.upsert_items([Item(item_id=top[1], categories=["rock"], active=False)])
    service.lifecycle.expire_catalog()  # the next refresh rereads the catalog
    assert service.refresh()
    assert top[1] not in ids(service, "u0", k=20)
    assert top[1] not in [entry["item_id"] for entry in service.popular(None, 60)[0]]


def test_catalog_refresh_applies_only_changes(service: RecommendationService, world: World) -> None:
    snapshot = service.snapshot
    service.lifecycle.expire_catalog()  # due now; the rows just loaded are re-read in the overlap
    assert not service.refresh()
    assert service.snapshot is snapshot
    retired = world.stores.catalog.get_item("i4")
    assert retired is not None and snapshot.catalog.active[snapshot.items.index_of("i4")]
    world.stores.catalog.upsert_items(
        [
            retired.model_copy(update={"active": False}),
            Item(item_id="brandnew", title="Brand new", creator="x", categories=["polka"]),
        ]
    )
    service.lifecycle.expire_catalog()
    assert service.refresh()
    fresh = service.snapshot
    assert fresh is not snapshot and fresh.catalog_loaded
    assert not fresh.catalog.active[fresh.items.index_of("i4")]
    assert "brandnew" in fresh.items and fresh.category_known("polka")
    assert len(fresh.items) == len(snapshot.items) + 1
    held = [item.item_id for item in service.lifecycle.catalog_items]
    assert held == sorted(held)
    assert "i4" not in ids(service, "u1", k=60)
    service.lifecycle.expire_catalog()
    assert not service.refresh() and service.snapshot is fresh


def test_creator_cap_holds_in_served_lists(service: RecommendationService) -> None:
    ranking = {"creator_cap": {"max_share": 0.2}, "mmr": {"enabled": False}}
    served = service.recommend(
        "u2", RankRequest(k=10), ranking=service.settings.ranking.with_overrides(ranking)
    )
    listed = [item.item_id for item in served.ranked.items]
    creators = [int(item[1:]) % 12 for item in listed if item.startswith("i")]
    assert max(creators.count(c) for c in set(creators)) <= 2


def test_new_items_reach_lists_through_content(world: World, tmp_path: Path) -> None:
    outcome = embed_catalog(world.settings, world.stores, now=NOW)
    assert outcome.version is not None
    service = RecommendationService(world.settings, world.stores)
    service.start(watch=False)
    assert service.snapshot.content_version == outcome.version.model_version
    # New items (no interactions) are content candidates, scored through CF vectors mapped
    # from their content: the two new rock items reach a rock fan's top 10, no other does.
    served = service.recommend("u0", RankRequest(k=10), ranking=None)
    new_items = [item for item in served.ranked.items if item.item_id.startswith("new")]
    assert sorted(item.item_id for item in new_items) == ["new0", "new3"]
    assert all("content" in item.sources for item in new_items)
    # An item no one has played: its neighbours come from content alone.
    similar, _ = service.similar("new0", 5)
    assert similar[0]["item_id"] == "new3"
    assert all(entry["sources"] == ["content"] for entry in similar)
    with pytest.raises(UnknownItem):
        service.similar("no-such-item", 5)


def test_trending_and_popular_lists_are_used_and_explained(
    service: RecommendationService, world: World
) -> None:
    as_of = datetime.now(UTC)
    trending = [{"item_id": f"i{n}", "score": 9.0 - n} for n in (7, 8)]
    publish_lists(None, world.stores.online, "trending", {"*": trending}, as_of=as_of, version="t1")
    popular = [{"item_id": f"i{n}", "score": 50.0 - n, "rank": n} for n in (10, 11, 12)]
    publish_lists(
        None, world.stores.online, "popularity", {"*": popular}, as_of=as_of, version="p1"
    )
    ranked = service.recommend("someone-new", RankRequest(k=5), ranking=None).ranked
    by_id = {item.item_id: item for item in ranked.items}
    assert {"i7", "i10"} <= set(by_id)
    assert by_id["i7"].explanation == "trending now" and "trending" in by_id["i7"].sources
    assert by_id["i10"].explanation == "popular right now"
    assert [entry["item_id"] for entry in service.popular(None, 2)[0]] == ["i10", "i11"]
    every = int(service.snapshot.catalog.active.sum())
    wider = service.recommend("someone-new", RankRequest(k=every), ranking=None).ranked
    assert "trending" in {item.item_id: item for item in wider.items}["i8"].sources


def test_a_thin_published_list_is_filled_to_k(service: RecommendationService, world: World) -> None:
    """A popularity run over a thin window published one item (issue 15): the popular list
    and an unknown user's list still hold k items, from the model's popularity and then the
    catalog, whenever the catalog has k active items."""
    as_of = datetime.now(UTC)
    thin = [{"item_id": "i10", "score": 1.0, "rank": 1}]
    publish_lists(None, world.stores.online, "popularity", {"*": thin}, as_of=as_of, version="p")
    active = service.snapshot.catalog.active
    for k in (5, 50):
        popular, _ = service.popular(None, k)
        assert len(popular) == k and popular[0]["item_id"] == "i10"
        assert len({entry["item_id"] for entry in popular}) == k
        positions = service.snapshot.positions([entry["item_id"] for entry in popular])
        assert active[positions].all()
        ranked = service.recommend(f"stranger-{k}", RankRequest(k=k), ranking=None).ranked
        assert len(ranked.items) == k and ranked.segment == "unknown"
    everything = int(active.sum())
    assert len(service.popular(None, everything + 10)[0]) == everything
    # A category holds only its own items, filled the same way.
    category = sorted(service.snapshot.catalog.members)[0]
    members = set(service.snapshot.item_ids[service.snapshot.catalog.members[category]])
    listed, _ = service.popular(category, 200)
    assert listed and {entry["item_id"] for entry in listed} <= members


def test_an_anonymous_session_is_ranked_from_its_items(service: RecommendationService) -> None:
    session = ["i0", "i3", "i6", "i9", "i12"]
    served = service.recommend(None, RankRequest(k=10), session_items=session, ranking=None)
    listed = [item.item_id for item in served.ranked.items]
    assert not set(session) & set(listed)
    assert sum(cluster(item) == 0 for item in listed if item.startswith("i")) >= 7
    assert served.ranked.segment == "warm"


def test_a_cold_users_category_affinity_comes_from_the_feature_store(world: World) -> None:
    features = open_feature_store(world.settings, world.stores.online)
    view = features.registry.view("user_category_affinity")
    row = {
        "entity_id": "jazz-fan",
        "event_timestamp": datetime.now(UTC),
        "top_category": "jazz",
        "top_categories": ["jazz"],
        "top_category_shares": [1.0],
        "category_count": 1,
    }
    assert features.online.write(view, pa.Table.from_pylist([row])) == 1
    service = RecommendationService(world.settings, world.stores, features=lambda: features.service)
    service.start(watch=False)
    try:
        plain = ids(service, "stranger", k=6, ranking=PLAIN)
        fan = ids(service, "jazz-fan", k=6, ranking=PLAIN)
    finally:
        service.stop()
        features.close()
    assert sum(cluster(item) == 1 for item in fan) > sum(cluster(item) == 1 for item in plain)
    assert sum(cluster(item) == 1 for item in fan) >= 4


@pytest.mark.parametrize("model_name", ["ease", "als"])
def test_explanations_name_the_models_own_neighbours_and_vary(model_name: str) -> None:
    """Without content embeddings, every item of a list read "because <one history item>"
    (the first anchor) for a model without factors. Now each names the history item the
    model itself finds most like it, and no history item explains more than its share."""
    from interaction_data import clustered_log

    from tastebud.config import load_settings
    from tastebud.data.matrix import MatrixOptions, build_matrix
    from tastebud.models import make_model
    from tastebud.ranking.pipeline import UserContext, rank
    from tastebud.ranking.snapshot import ServingModel, Snapshot

    params = {"l2": 10.0} if model_name == "ease" else {"factors": 16, "random_state": 0}
    model = make_model(model_name, **params).fit(build_matrix(clustered_log(), MatrixOptions()))
    serving = ServingModel.prepare(model, "v1", exact_threshold=10_000)
    snapshot = Snapshot.build(serving, None, serving_world.catalog_items())
    ranking = load_settings().ranking.with_overrides({"candidates": {"fresh": 0}})
    ranked = rank(snapshot, UserContext(user_id="u0"), RankRequest(k=6), ranking)

    history = model.items_.id_of(model.user_items_[model.users_.index_of("u0")].indices)
    titles = {f"Song {item_id[1:]}": item_id for item_id in history}
    named: list[str] = []
    for item in ranked.items:
        assert item.explanation is not None
        assert item.explanation.startswith("because ") and "is in your history" in item.explanation
        title = item.explanation.removeprefix("because ").removesuffix(" is in your history")
        named.append(titles[title])
    assert len(set(named)) == len(named)  # 12 history items: one each
    # The first item is explained by the history item the model finds most like it.
    columns = model.items_.index(list(history))
    first = model.items_.index([ranked.items[0].item_id])
    similarity = model.item_similarity(columns, first)[:, 0]
    assert named[0] == history[int(np.argmax(similarity))]
    assert (ranked.items[0].title, ranked.items[0].creator) == (
        f"Song {ranked.items[0].item_id[1:]}",
        f"artist{int(ranked.items[0].item_id[1:]) % 12}",
    )


def test_explanations_of_a_short_history_share_it_out() -> None:
    """Two history items and six recommendations: each item names at most three times."""
    from tastebud.config import load_settings
    from tastebud.ranking.pipeline import Activity, UserContext, rank
    from tastebud.ranking.snapshot import ServingModel, Snapshot

    model = serving_world.fitted_model()
    snapshot = Snapshot.build(
        ServingModel.prepare(model, "v1", exact_threshold=10_000),
        None,
        serving_world.catalog_items(),
    )
    now = datetime.now(UTC).timestamp()
    recent = [Activity("i0", "play", now - 60, 1.0), Activity("i3", "like", now - 30, 4.0)]
    ranking = load_settings().ranking.with_overrides(
        {"candidates": {"fresh": 0}, "cold_start": {"min_interactions": 1}}
    )
    ranked = rank(snapshot, UserContext(user_id=None, recent=recent), RankRequest(k=6), ranking)
    reasons = [item.explanation for item in ranked.items]
    named = [r for r in reasons if r and r.startswith("because you")]
    assert named and len(set(named)) == 2, reasons
    assert max(named.count(reason) for reason in set(named)) <= 3
