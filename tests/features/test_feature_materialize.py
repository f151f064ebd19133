"""Materialization, the serving fallback and parity, end to end over real stores: the
embedded database with Parquet offline values, and PostgreSQL for both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from event_factories import T0, make_events

from tastebud.config import Settings, load_settings
from tastebud.features.materialize import backfill, materialize, watermark
from tastebud.features.parity import run_parity
from tastebud.features.serving import FALLBACKS
from tastebud.features.store import FeatureStore, open_feature_store
from tastebud.schemas import Item
from tastebud.stores import Stores, open_online_store, open_stores

NOW = datetime.now(UTC).replace(microsecond=0)
BASE = NOW - timedelta(hours=5)
END = BASE + timedelta(hours=4)


@pytest.fixture(params=["embedded", "postgres"])
def settings(request: pytest.FixtureRequest, home: Path) -> Settings:
    online = f"sqlite://{home / 'online.db'}"
    if request.param == "postgres":
        return load_settings(
            database_url=request.getfixturevalue("postgres_url"), online_url=online
        )
    return load_settings(online_url=online)


@pytest.fixture
def stores(settings: Settings) -> Iterator[Stores]:
    opened = open_stores(settings)
    events = make_events(300)
    opened.events.append(
        [event.model_copy(update={"timestamp": BASE + (event.timestamp - T0)}) for event in events]
    )
    opened.catalog.upsert_items(
        [
            Item(
                item_id=f"i{n}",
                categories=["rock" if n % 2 else "jazz"],
                created_at=BASE - timedelta(days=n),
            )
            for n in range(7)
        ]
    )
    yield opened
    opened.close()


@pytest.fixture
def features(settings: Settings, stores: Stores) -> Iterator[FeatureStore]:
    opened = open_feature_store(settings, stores.online)
    yield opened
    opened.close()


def fallback_count(view: str, reason: str, outcome: str) -> float:
    return FALLBACKS.labels(view=view, reason=reason, outcome=outcome)._value.get()


def test_materialize_serves_views_and_is_idempotent(
    features: FeatureStore, settings: Settings, stores: Stores
) -> None:
    first = materialize(features, settings, stores, end=END)
    assert first["item_popularity"]["published"] == 7
    assert first["user_engagement"]["published"] == 5
    assert first["item_cf_factors"]["computed"] == 0  # no production model yet
    assert first["item_content_embedding"]["computed"] == 0  # issue 6 has not published
    view = features.registry.view("item_popularity")
    assert watermark(features, view) == END
    refs = ["item_popularity:popularity_score", "item_freshness:freshness_score"]
    before = features.service.get_online_features({"item": ["i1"]}, refs).values
    second = materialize(features, settings, stores, end=END)
    assert second["item_popularity"]["published"] == 7
    assert features.offline.snapshots(view) == [END]  # the same snapshot, rewritten
    after = features.service.get_online_features({"item": ["i1"]}, refs).values
    assert before == after
    score = after["item"]["i1"]["item_popularity:popularity_score"]
    assert score is not None and score > 0
    # The user view reuses the affinity job's computation.
    users = features.service.get_online_features(
        {"user": ["u1"]}, ["user_category_affinity:*", "user_engagement:events_30d"]
    ).values["user"]["u1"]
    assert set(users["user_category_affinity:top_categories"]) == {"jazz", "rock"}
    assert users["user_engagement:events_30d"] == 48


def test_older_interval_never_overwrites_newer_values(
    features: FeatureStore, settings: Settings, stores: Stores
) -> None:
    materialize(features, settings, stores, end=END)
    view = features.registry.view("user_engagement")
    newer = features.service.get_online_features({"user": ["u1"]}, ["user_engagement:events_30d"])
    report = materialize(features, settings, stores, end=END - timedelta(hours=2))
    assert report["user_engagement"]["published"] == 0
    assert watermark(features, view) == END
    again = features.service.get_online_features({"user": ["u1"]}, ["user_engagement:events_30d"])
    assert again.values == newer.values
    assert len(features.offline.snapshots(view)) == 2  # the older snapshot is still stored


def test_overlap_publishes_late_offline_values(
    features: FeatureStore, settings: Settings, stores: Stores
) -> None:
    materialize(features, settings, stores, end=END, views=["item_freshness"])
    view = features.registry.view("item_freshness")
    # A value lands offline, stamped before the watermark (a late writer, a backfill).
    late = END - timedelta(minutes=10)
    table = pa.table(
        {
            "entity_id": ["i_late"],
            "event_timestamp": pa.array([late], pa.timestamp("us", tz="UTC")),
            "freshness_score": [0.5],
            "age_days": [14.0],
            "active": [True],
        },
        schema=view.arrow_schema(),
    )
    features.offline.write(view, table, late)
    report = materialize(
        features, settings, stores, start=END, end=END + timedelta(minutes=10), views=[view.name]
    )
    assert report[view.name]["published"] == 8
    got = features.service.get_online_features({"item": ["i_late"]}, ["item_freshness:*"])
    assert got.values["item"]["i_late"]["item_freshness:freshness_score"] == 0.5
    assert got.fallbacks == 0


def test_missing_values_fall_back_to_offline_and_are_counted(
    features: FeatureStore, settings: Settings, stores: Stores
) -> None:
    materialize(features, settings, stores, end=END, views=["user_engagement"])
    view = features.registry.view("user_engagement")
    features.online.delete(view, ["u2"])
    before = fallback_count(view.name, "missing", "found")
    result = features.service.get_online_features(
        {"user": ["u2", "nobody"], "shop": ["s1"]}, ["user_engagement:events_7d", "x:y"]
    )
    assert result.values["user"]["u2"]["user_engagement:events_7d"] == 48
    assert result.values["user"]["nobody"]["user_engagement:events_7d"] is None
    assert result.missing == [
        {"entity": "user", "entity_id": "nobody", "feature": "user_engagement:events_7d"}
    ]
    assert result.unknown_features == ["x:y"] and result.unknown_entities == ["shop"]
    assert result.fallbacks == 2
    assert fallback_count(view.name, "missing", "found") == before + 1


def test_redis_down_falls_back_to_offline(
    features: FeatureStore, settings: Settings, stores: Stores
) -> None:
    materialize(features, settings, stores, end=END, views=["user_engagement"])
    down = open_feature_store(settings, open_online_store("redis://127.0.0.1:1/0"))
    try:
        result = down.service.get_online_features({"user": ["u3"]}, ["user_engagement:events_30d"])
    finally:
        down.close()
    assert result.values["user"]["u3"]["user_engagement:events_30d"] == 48
    assert result.missing == [] and result.fallbacks == 1
    assert fallback_count("user_engagement", "unavailable", "found") >= 1


def test_parity_finds_no_drift_then_finds_tampering(
    features: FeatureStore, settings: Settings, stores: Stores
) -> None:
    materialize(features, settings, stores, end=END)
    report = run_parity(features, sample=50)
    # popularity, freshness, engagement, affinity, rhythm
    assert report["sampled"] == 7 + 7 + 5 + 4 + 5
    assert report["diffs"] == 0 and report["diff_rate"] == 0.0
    view = features.registry.view("item_popularity")
    key = features.online.key(view, "i1")
    document = json.loads(stores.online.get(key) or b"{}")
    document["v"]["popularity_score"] += 1.0
    stores.online.set(key, json.dumps(document).encode())
    features.online.delete(view, ["i2"])
    tampered = run_parity(features, sample=50, views=["item_popularity"])
    entry = tampered["views"]["item_popularity"]
    assert entry["diffs"] == 2 and entry["diff_rate"] == pytest.approx(2 / 7)
    assert {example["entity_id"] for example in entry["examples"]} == {"i1", "i2"}


def test_backfill_gives_point_in_time_training_rows(
    features: FeatureStore, settings: Settings, stores: Stores
) -> None:
    report = backfill(
        features,
        settings,
        stores,
        start=BASE,
        end=END,
        step=timedelta(hours=1),
        views=["user_engagement"],
    )
    assert report["snapshots"] == 4
    rows = pa.table(
        {
            "user_id": ["u1", "u1", "u1"],
            "event_timestamp": pa.array(
                [BASE + timedelta(minutes=30), BASE + timedelta(hours=1, minutes=1), END],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    table = features.offline.get_historical_features(
        rows, ["user_engagement:events_30d"], features.registry
    )
    # Events are one a minute, u1 every 5th: none known at 0:30, 12 by 1:00, 48 by 4:00.
    assert table.column("user_engagement__events_30d").to_pylist() == [None, 12, 48]


def test_metrics_have_the_issue_names(
    features: FeatureStore, settings: Settings, stores: Stores
) -> None:
    materialize(features, settings, stores, end=END, views=["item_freshness"])
    features.service.get_online_features({"item": ["i1"]}, ["item_freshness:*"])
    run_parity(features, views=["item_freshness"])
    ages = features.service.refresh_freshness()
    assert ages["item_freshness"] is not None and 0 <= ages["item_freshness"] < 60
    assert ages["item_popularity"] is None  # never materialized
    from prometheus_client import generate_latest

    from tastebud.observability import metrics

    text = generate_latest(metrics.registry).decode()
    for name in (
        "tastebud_feature_latency_ms_bucket",
        "tastebud_feature_cache_hit_ratio",
        "tastebud_feature_parity_diff_count",
        "tastebud_feature_freshness_seconds",
        "tastebud_feature_fallback_count_total",
    ):
        assert name in text, name
