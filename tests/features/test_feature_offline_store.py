"""The OfflineStore contract, run against the embedded Parquet store and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import feature_fixtures
import pyarrow as pa
import pytest
from event_factories import T0

from tastebud.features.offline import FeatureVersionConflict, OfflineStore, UnknownFeatures
from tastebud.features.views import FeatureRegistry, FeatureView

TS = pa.timestamp("us", tz="UTC")
offline, offline_url = feature_fixtures.offline, feature_fixtures.offline_url
test_registry, user_view = feature_fixtures.test_registry, feature_fixtures.user_view


def user_rows(view: FeatureView, as_of, clicks: dict[str, int]) -> pa.Table:  # type: ignore[no-untyped-def]
    ids = sorted(clicks)
    return pa.table(
        {
            "entity_id": ids,
            "event_timestamp": pa.array([as_of] * len(ids), TS),
            "clicks": pa.array([clicks[i] for i in ids], pa.int64()),
            "score": pa.array([clicks[i] / 10 for i in ids], pa.float64()),
            "seen_at": pa.array([as_of - timedelta(minutes=1)] * len(ids), TS),
            "tags": pa.array([["a", i] for i in ids], pa.list_(pa.string())),
            "vector": pa.array([[0.1, clicks[i]] for i in ids], pa.list_(pa.float32())),
        },
        schema=view.arrow_schema(),
    )


def test_write_and_latest(offline: OfflineStore, user_view: FeatureView) -> None:
    offline.write(user_view, user_rows(user_view, T0, {"u1": 1, "u2": 2}), T0)
    later = T0 + timedelta(hours=1)
    offline.write(user_view, user_rows(user_view, later, {"u1": 10}), later)
    latest = offline.latest(user_view).to_pylist()
    assert [(r["entity_id"], r["clicks"]) for r in latest] == [("u1", 10), ("u2", 2)]
    assert latest[0]["tags"] == ["a", "u1"]
    assert latest[0]["vector"] == pytest.approx([0.1, 10.0])
    assert latest[0]["seen_at"] == later - timedelta(minutes=1)
    window = offline.latest(user_view, start=T0, end=later, entity_ids=["u1", "zz"])
    assert window.column("clicks").to_pylist() == [1]
    assert offline.snapshots(user_view) == [T0, later]


def test_rewriting_a_snapshot_replaces_it(offline: OfflineStore, user_view: FeatureView) -> None:
    offline.write(user_view, user_rows(user_view, T0, {"u1": 1, "u2": 2}), T0)
    offline.write(user_view, user_rows(user_view, T0, {"u1": 5}), T0)
    latest = offline.latest(user_view).to_pylist()
    assert [(r["entity_id"], r["clicks"]) for r in latest] == [("u1", 5)]
    assert offline.snapshots(user_view) == [T0]


def test_point_in_time_never_leaks_the_future(
    offline: OfflineStore, user_view: FeatureView
) -> None:
    """A value stamped after an entity row's timestamp must never appear in that row."""
    stamps = [T0 + timedelta(hours=h) for h in range(0, 6)]
    for hour, moment in enumerate(stamps):
        offline.write(
            user_view, user_rows(user_view, moment, {"u1": hour, "u2": 100 + hour}), moment
        )
    asks = [
        ("u1", T0 - timedelta(seconds=1)),  # before anything: null
        ("u1", T0),  # exactly at a snapshot: that snapshot
        ("u1", T0 + timedelta(hours=2, minutes=59)),  # between: the earlier one
        ("u2", T0 + timedelta(hours=3)),
        ("u9", T0 + timedelta(hours=3)),  # unknown entity: null
        ("u1", T0 + timedelta(days=3)),  # past the 1-day TTL of the last value: null
    ]
    ids = pa.array([a[0] for a in asks], pa.string())
    times = pa.array([a[1] for a in asks], TS)
    result = offline.point_in_time(user_view, ids, times)
    assert result.column("clicks").to_pylist() == [None, 0, 2, 103, None, None]
    # Exhaustively: every answer's value was computed at or before the asked time.
    many = [(f"u{1 + n % 2}", T0 + timedelta(minutes=7 * n)) for n in range(60)]
    got = offline.point_in_time(
        user_view,
        pa.array([m[0] for m in many], pa.string()),
        pa.array([m[1] for m in many], TS),
    ).column("clicks")
    for (entity, asked), value in zip(many, got.to_pylist(), strict=True):
        hour = value - (100 if entity == "u2" else 0)
        assert stamps[hour] <= asked, (entity, asked, value)
        assert hour == 5 or asked < stamps[hour + 1]  # and it is the newest one


def test_historical_features_join_each_entity(
    offline: OfflineStore, test_registry: FeatureRegistry
) -> None:
    users, items = test_registry.view("user_stats"), test_registry.view("item_stats")
    offline.write(users, user_rows(users, T0, {"u1": 3}), T0)
    item_table = pa.table(
        {
            "entity_id": ["i1"],
            "event_timestamp": pa.array([T0], TS),
            "price": [9.5],
            "label": ["x"],
            "active": [True],
        },
        schema=items.arrow_schema(),
    )
    offline.write(items, item_table, T0)
    rows = pa.table(
        {
            "user_id": ["u1", "u1"],
            "item_id": ["i1", "i1"],
            "event_timestamp": pa.array([T0 + timedelta(minutes=5), T0 + timedelta(hours=2)], TS),
        }
    )
    table = offline.get_historical_features(
        rows, ["user_stats:clicks", "item_stats:*"], test_registry
    )
    assert table.column("user_stats__clicks").to_pylist() == [3, 3]
    assert table.column("item_stats__price").to_pylist() == [9.5, None]  # item TTL is 1 h
    assert table.column("item_stats__active").to_pylist() == [True, None]
    with pytest.raises(UnknownFeatures, match="nope:x"):
        offline.get_historical_features(rows, ["nope:x"], test_registry)


def test_changed_definition_needs_new_version(
    offline: OfflineStore, user_view: FeatureView
) -> None:
    offline.write(user_view, user_rows(user_view, T0, {"u1": 1}), T0)
    changed = user_view.model_copy(update={"ttl_seconds": 5.0})
    with pytest.raises(FeatureVersionConflict, match="needs a new version"):
        offline.write(changed, user_rows(changed, T0, {"u1": 1}), T0)
    documented = user_view.model_copy(update={"description": "better words"})
    offline.check_version(documented)  # documentation is not part of the definition
    bumped = changed.model_copy(update={"version": "1.1.0"})
    offline.write(bumped, user_rows(bumped, T0, {"u1": 7}), T0)
    assert offline.latest(bumped).column("clicks").to_pylist() == [7]
    assert offline.latest(user_view).column("clicks").to_pylist() == [1]


def test_state_round_trip(offline: OfflineStore) -> None:
    assert offline.get_state("watermark:x") is None
    offline.set_state("watermark:x", {"end": T0.isoformat(), "n": 1})
    offline.set_state("watermark:x", {"end": T0.isoformat(), "n": 2})
    assert offline.get_state("watermark:x") == {"end": T0.isoformat(), "n": 2}


def test_lookup_of_a_few_entities_across_many_snapshots(
    offline: OfflineStore, user_view: FeatureView
) -> None:
    """The serving fallback walks snapshots newest first; an entity that dropped out of
    recent snapshots is still found in an older one, with its newest value."""
    for hour in range(20):
        moment = T0 + timedelta(hours=hour)
        values = {"u1": hour} if hour < 3 else {"u2": hour}
        offline.write(user_view, user_rows(user_view, moment, values), moment)
    found = offline.latest(user_view, entity_ids=["u1", "u2", "u3"])
    assert [(r["entity_id"], r["clicks"]) for r in found.to_pylist()] == [("u1", 2), ("u2", 19)]
    since = offline.latest(user_view, entity_ids=["u1"], start=T0 + timedelta(hours=5))
    assert since.num_rows == 0


def test_prune_keeps_the_newest_snapshot(offline: OfflineStore, user_view: FeatureView) -> None:
    moments = [T0 + timedelta(days=day) for day in range(3)]
    for moment in moments:
        offline.write(user_view, user_rows(user_view, moment, {"u1": moment.day}), moment)
    assert offline.prune(user_view, moments[2]) == 2
    assert offline.snapshots(user_view) == [moments[2]]
    assert offline.prune(user_view, moments[2] + timedelta(days=9)) == 0
    assert offline.latest(user_view).column("clicks").to_pylist() == [3]
