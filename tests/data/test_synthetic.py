"""The synthetic world: exact schemas, determinism, integrity, and the planted structure
(popularity, tastes, trends, seasonality, affinity-driven feedback) really shows in the data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastebud.config import default_event_types
from tastebud.data.synthetic import WorldSpec, WorldSummary, estimate_events, generate_world
from tastebud.data.synthetic_world import build_world
from tastebud.schemas import EVENT_SCHEMA, ITEM_SCHEMA, USER_SCHEMA, Event

SPEC = WorldSpec(users=500, items=700, days=14, categories=10, seed=11)
FILES = ("events.parquet", "items.parquet", "users.parquet", "truth.json")


@dataclass
class Loaded:
    """A generated world read back, with events as numpy arrays indexed like the files."""

    summary: WorldSummary
    events: pa.Table
    items: pa.Table
    users: pa.Table
    truth: dict[str, Any]
    user_index: np.ndarray  # per event, row in users
    item_index: np.ndarray  # per event, row in items
    event_type: np.ndarray
    value: np.ndarray  # NaN for null
    timestamp_us: np.ndarray
    item_category: np.ndarray  # primary category name per item row
    item_attributes: list[dict[str, Any]]

    def of_type(self, name: str) -> np.ndarray:
        return self.event_type == name

    def in_top_categories(self) -> np.ndarray:
        """Per event: is the item's primary category among the user's truth top-3?"""
        top = self.truth["users"]["top_categories"]
        user_ids = self.users["user_id"].to_pylist()
        top_sets = [set(top[user]) for user in user_ids]
        categories = self.item_category[self.item_index]
        return np.array(
            [c in top_sets[u] for u, c in zip(self.user_index, categories, strict=True)]
        )


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def load(summary: WorldSummary) -> Loaded:
    out = summary.out_dir
    events = pq.read_table(out / "events.parquet")
    items = pq.read_table(out / "items.parquet")
    users = pq.read_table(out / "users.parquet")
    item_rows = {item: row for row, item in enumerate(items["item_id"].to_pylist())}
    user_rows = {user: row for row, user in enumerate(users["user_id"].to_pylist())}
    return Loaded(
        summary=summary,
        events=events,
        items=items,
        users=users,
        truth=json.loads((out / "truth.json").read_text()),
        user_index=np.array([user_rows[u] for u in events["user_id"].to_pylist()]),
        item_index=np.array([item_rows[i] for i in events["item_id"].to_pylist()]),
        event_type=np.array(events["event_type"].to_pylist()),
        value=events["value"].to_numpy(zero_copy_only=False).astype(float),
        timestamp_us=events["timestamp"].cast(pa.int64()).to_numpy(),
        item_category=np.array([c[0] for c in items["categories"].to_pylist()]),
        item_attributes=[json.loads(a) for a in items["attributes"].to_pylist()],
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    return load(generate_world(SPEC, tmp_path_factory.mktemp("world")))


def test_files_have_exactly_the_schemas(world: Loaded) -> None:
    out = world.summary.out_dir
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for name, schema in [("events", EVENT_SCHEMA), ("items", ITEM_SCHEMA), ("users", USER_SCHEMA)]:
        stored = pq.read_schema(out / f"{name}.parquet")
        assert stored.remove_metadata().equals(schema), name
    assert world.events.num_rows == world.summary.events
    assert (world.items.num_rows, world.users.num_rows) == (SPEC.items, SPEC.users)


def test_event_count_near_the_estimate(world: Loaded) -> None:
    assert 0.85 < world.summary.events / estimate_events(SPEC) < 1.15


def test_same_spec_gives_identical_files(tmp_path: Path) -> None:
    spec = WorldSpec(users=80, items=120, days=5, categories=5, seed=3)
    first = generate_world(spec, tmp_path / "a")
    second = generate_world(spec, tmp_path / "b")
    assert first.events == second.events > 0
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    other = generate_world(WorldSpec(users=80, items=120, days=5, categories=5, seed=4), tmp_path)
    assert (tmp_path / "events.parquet").read_bytes() != (
        tmp_path / "a/events.parquet"
    ).read_bytes()
    assert other.seed == 4


def test_a_world_ends_where_asked_and_keeps_its_latent_structure(tmp_path: Path) -> None:
    """The seed fixes users, items, tastes and which items trend on which days; the end
    only places the period in time. Other ends give other event ids, never the same ids for
    other events."""
    end = datetime(2026, 3, 4, 15, 19, tzinfo=UTC)
    fields: dict[str, Any] = {"users": 60, "items": 90, "days": 6, "seed": 7}
    spec = WorldSpec.ending(end, **fields)
    assert spec.end == end and spec.start == end - timedelta(days=6)
    first = load(generate_world(spec, tmp_path / "a"))
    later = load(
        generate_world(WorldSpec.ending(end + timedelta(days=3, hours=5), **fields), tmp_path / "b")
    )
    assert first.truth["period"]["end"] == end.isoformat()
    assert first.timestamp_us.max() < micros(end) and first.timestamp_us.min() >= micros(spec.start)
    for key in ("categories", "category_tags", "users", "creator_home_categories"):
        assert first.truth[key] == later.truth[key], key
    shifted = [
        (t["item_id"], datetime.fromisoformat(t["start"]) + timedelta(days=3, hours=5))
        for t in first.truth["trending"]
    ]
    assert shifted == [
        (t["item_id"], datetime.fromisoformat(t["start"])) for t in later.truth["trending"]
    ]
    assert first.items["title"].to_pylist() == later.items["title"].to_pylist()
    ids = set(first.events["event_id"].to_pylist())
    assert not ids & set(later.events["event_id"].to_pylist())
    again = generate_world(WorldSpec.ending(end, **fields), tmp_path / "c")
    assert (tmp_path / "c/events.parquet").read_bytes() == (
        tmp_path / "a/events.parquet"
    ).read_bytes()
    assert again.events == first.summary.events


def test_trends_at_the_end_and_in_a_popularity_band(tmp_path: Path) -> None:
    spec = WorldSpec(
        users=300, items=400, days=8, seed=2, trending_items=4, trending_at_end=2,
        trending_band=(0.9, 0.99),
    )  # fmt: skip
    loaded = load(generate_world(spec, tmp_path))
    trends = loaded.truth["trending"]
    ending = [t for t in trends if t["end"] == loaded.truth["period"]["end"]]
    assert len(ending) >= 2
    assert all(t["start"] == (spec.end - timedelta(days=1)).isoformat() for t in ending[-2:])
    world = build_world(
        spec,
        np.random.default_rng(np.random.SeedSequence(spec.seed).spawn(1)[0]),
        micros(spec.start),
    )
    existing = world.item_popularity[world.item_created_us < micros(spec.start)]
    low, high = np.quantile(existing, spec.trending_band)
    for trend in world.trends:
        assert low <= world.item_popularity[trend.item] <= high
    assert [t["item_id"] for t in trends] == [f"i{t.item:06d}" for t in world.trends]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trending_items": 1, "trending_at_end": 2}, "trending_at_end must not exceed"),
        ({"trending_band": (0.9, 0.5)}, "trending_band"),
        ({"trending_band": (0.1, 1.5)}, "trending_band"),
    ],
)
def test_bad_trend_options_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorldSpec(**fields)
    with pytest.raises(ValueError, match="timezone-aware"):
        WorldSpec.ending(datetime(2026, 1, 1))


def test_progress_reports_every_day(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    generate_world(
        WorldSpec(users=20, items=30, days=4), tmp_path, lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_failed_run_leaves_no_files(tmp_path: Path) -> None:
    def fail_on_day_two(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        generate_world(WorldSpec(users=20, items=30, days=4), tmp_path, fail_on_day_two)
    assert list(tmp_path.iterdir()) == []


def test_ids_and_fixed_columns(world: Loaded) -> None:
    ids = world.events["event_id"].to_pylist()
    assert SPEC.world_id.startswith(f"syn{SPEC.seed}.") and world.truth["world_id"] == SPEC.world_id
    assert ids == [f"{SPEC.world_id}-{n:010d}" for n in range(len(ids))]
    assert set(world.events["schema_version"].to_pylist()) == {2}
    assert world.events["received_at"].null_count == world.events.num_rows
    assert world.events["session_id"].null_count == 0
    contexts = world.events["context"].to_pylist()
    pages = {json.loads(c)["page"] for c in contexts if c is not None}
    assert pages == {"home", "search", "item"}
    assert 0.5 < contexts.count(None) / len(contexts) < 1.0


def test_events_pass_the_event_model(world: Loaded) -> None:
    sample = world.events.take(np.arange(0, world.events.num_rows, 50))
    for row in sample.to_pylist():
        row["context"] = json.loads(row["context"]) if row["context"] else {}
        Event.from_payload(row)  # raises on anything the ingest path would reject


def test_events_reference_existing_users_and_items_after_creation(world: Loaded) -> None:
    user_created = world.users["created_at"].cast(pa.int64()).to_numpy()
    item_created = world.items["created_at"].cast(pa.int64()).to_numpy()
    assert (world.timestamp_us >= user_created[world.user_index]).all()
    assert (world.timestamp_us >= item_created[world.item_index]).all()
    start = micros(SPEC.start)
    # Some users and items arrive during the period, and the late ones do take part.
    late_users = np.flatnonzero(user_created >= start)
    late_items = np.flatnonzero(item_created >= start)
    assert 0.2 * SPEC.users < len(late_users) < 0.4 * SPEC.users
    assert 0.1 * SPEC.items < len(late_items) < 0.3 * SPEC.items
    assert np.isin(late_users, world.user_index).mean() > 0.5
    assert np.isin(late_items, world.item_index).mean() > 0.3
    arrivals = world.truth["arrivals"]
    assert arrivals["users_arriving"] == len(late_users)
    assert arrivals["items_arriving"] == len(late_items)


def test_timestamps_in_range_and_sorted_per_day(world: Loaded) -> None:
    start, end = micros(SPEC.start), micros(SPEC.start + timedelta(days=SPEC.days))
    assert world.timestamp_us.min() >= start and world.timestamp_us.max() < end
    parquet = pq.ParquetFile(world.summary.out_dir / "events.parquet")
    assert parquet.metadata.num_row_groups == SPEC.days
    for group in range(parquet.metadata.num_row_groups):
        stamps = parquet.read_row_group(group)["timestamp"].cast(pa.int64()).to_numpy()
        assert (np.diff(stamps) >= 0).all()
        assert len(set((stamps - start) // 86_400_000_000)) == 1


def test_sessions_belong_to_one_user_and_are_short(world: Loaded) -> None:
    sessions = np.array(world.events["session_id"].to_pylist())
    order = np.argsort(sessions, kind="stable")
    names, first = np.unique(sessions[order], return_index=True)
    users = np.split(world.user_index[order], first[1:])
    stamps = np.split(world.timestamp_us[order], first[1:])
    assert all(len(set(u)) == 1 for u in users)
    spans_minutes = np.array([(s.max() - s.min()) / 60e6 for s in stamps])
    sizes = np.array([len(s) for s in stamps])
    assert 3 < sizes.mean() < 20
    assert np.median(spans_minutes) < 60
    assert len(names) > SPEC.users


def test_device_and_locale_are_stable_per_user(world: Loaded) -> None:
    attributes = [json.loads(a) for a in world.users["attributes"].to_pylist()]
    devices = np.array([a["device_type"] for a in attributes])
    locales = np.array([a["locale"] for a in attributes])
    assert (np.array(world.events["device_type"].to_pylist()) == devices[world.user_index]).all()
    assert (np.array(world.events["locale"].to_pylist()) == locales[world.user_index]).all()
    shares = {d: (devices == d).mean() for d in ("web", "mobile", "other")}
    assert shares["mobile"] > shares["web"] > shares["other"] > 0
    assert len(set(locales)) >= 5 and {"en-US", "de-DE", "pt-BR"} <= set(locales)


def test_popularity_is_power_law(world: Loaded) -> None:
    counts = np.sort(np.bincount(world.item_index, minlength=SPEC.items))[::-1]
    top_decile_share = counts[: SPEC.items // 10].sum() / counts.sum()
    assert top_decile_share > 0.4
    assert counts[0] > 20 * max(np.median(counts), 1)


def test_users_concentrate_on_their_top_categories(world: Loaded) -> None:
    uniform_share = 3 / SPEC.categories
    share = world.in_top_categories().mean()
    assert share > 2 * uniform_share, share


def test_favorite_creators_get_extra_attention(world: Loaded) -> None:
    favorites = world.truth["users"]["favorite_creators"]
    creators = np.array(world.items["creator"].to_pylist())[world.item_index]
    user_ids = world.users["user_id"].to_pylist()
    hit = np.array(
        [c in favorites[user_ids[u]] for u, c in zip(world.user_index, creators, strict=True)]
    )
    # Each user has <= 3 favourites out of ~87 creators: by chance they would get ~3.5%.
    assert hit.mean() > 0.1


def test_trending_items_spike_inside_their_window(world: Loaded) -> None:
    trends = world.truth["trending"]
    assert len(trends) == SPEC.trending_items
    day = (world.timestamp_us - micros(SPEC.start)) // 86_400_000_000
    item_ids = world.items["item_id"].to_pylist()
    inside_rates, outside_rates = [], []
    for trend in trends:
        assert trend["boost"] >= 1
        row = item_ids.index(trend["item_id"])
        first = (datetime.fromisoformat(trend["start"]) - SPEC.start).days
        last = (datetime.fromisoformat(trend["end"]) - SPEC.start).days
        per_day = np.bincount(day[world.item_index == row], minlength=SPEC.days)
        inside = np.arange(SPEC.days)[first:last]
        outside = np.setdiff1d(np.arange(SPEC.days), inside)
        assert len(inside) >= 1 and len(outside) >= 1
        inside_rates.append(per_day[inside].mean())
        outside_rates.append(per_day[outside].mean())
        assert inside_rates[-1] > outside_rates[-1], trend
    ratios = np.array(inside_rates) / np.maximum(outside_rates, 0.5)
    assert np.median(ratios) > 3, ratios


def test_hourly_activity_follows_the_seasonal_profile(world: Loaded) -> None:
    profile = np.array(world.truth["seasonality"]["hourly"])
    assert len(profile) == 24 and abs(profile.sum() - 1) < 1e-3
    hours = (world.timestamp_us // 3_600_000_000) % 24
    counts = np.bincount(hours, minlength=24)
    assert counts[profile.argmax()] > 3 * counts[profile.argmin()]
    assert np.corrcoef(counts, profile)[0, 1] > 0.9


def test_event_type_mix(world: Loaded) -> None:
    types, counts = np.unique(world.event_type, return_counts=True)
    mix = dict(zip(types.tolist(), (counts / counts.sum()).tolist(), strict=True))
    assert set(mix) == set(default_event_types())
    assert mix["view"] + mix["play"] > 0.5
    assert mix["play"] > mix["like"] > mix["dislike"]
    assert mix["view"] > mix["click"] > mix["add_to_cart"] > mix["purchase"]


def test_values_follow_each_event_type(world: Loaded) -> None:
    valued = {"play", "skip", "add_to_cart", "purchase", "rating"}
    for name in set(world.event_type):
        has_value = ~np.isnan(world.value[world.of_type(name)])
        assert has_value.all() if name in valued else not has_value.any(), name
    prices = np.array([a["price"] for a in world.item_attributes])
    for name in ("add_to_cart", "purchase"):
        mask = world.of_type(name)
        assert np.allclose(world.value[mask], prices[world.item_index[mask]])
    durations = np.array([a["duration_sec"] for a in world.item_attributes])
    plays = world.of_type("play")
    assert (world.value[plays] > 0).all()
    assert (world.value[plays] <= durations[world.item_index[plays]] + 1).all()


def test_ratings_track_affinity(world: Loaded) -> None:
    ratings = world.of_type("rating")
    stars = world.value[ratings]
    assert stars.min() >= 1 and stars.max() <= 5
    assert np.allclose(stars * 2, np.round(stars * 2))
    liked = world.in_top_categories()[ratings]
    assert stars[liked].mean() > stars[~liked].mean() + 0.3


def test_engagement_tracks_affinity(world: Loaded) -> None:
    liked = world.in_top_categories()
    durations = np.array([a["duration_sec"] for a in world.item_attributes])
    plays = world.of_type("play")
    fraction = world.value / durations[world.item_index]
    assert fraction[plays & liked].mean() > fraction[plays & ~liked].mean() + 0.05
    skip_rate_liked = world.of_type("skip")[liked].sum() / (plays & liked).sum()
    skip_rate_other = world.of_type("skip")[~liked].sum() / (plays & ~liked).sum()
    assert skip_rate_other > 1.5 * skip_rate_liked
    like_vs_dislike_liked = (
        world.of_type("like")[liked].sum() / world.of_type("dislike")[liked].sum()
    )
    like_vs_dislike_other = (
        world.of_type("like")[~liked].sum() / world.of_type("dislike")[~liked].sum()
    )
    assert like_vs_dislike_liked > 2 * like_vs_dislike_other


def test_content_attributes_follow_categories(world: Loaded) -> None:
    truth_means = world.truth["category_feature_means"]
    tempo = np.array([a["tempo"] for a in world.item_attributes])
    observed, expected = [], []
    for category, means in truth_means.items():
        members = world.item_category == category
        if members.sum() >= 5:
            observed.append(tempo[members].mean())
            expected.append(means["tempo"])
    assert len(observed) >= 5
    assert max(observed) - min(observed) > 30
    assert np.corrcoef(observed, expected)[0, 1] > 0.9
    tags = world.truth["category_tags"]
    assert all(
        set(a["tags"]) <= set(tags[c]) and 2 <= len(a["tags"]) <= 4
        for a, c in zip(world.item_attributes, world.item_category, strict=True)
    )


def test_truth_document(world: Loaded) -> None:
    truth = world.truth
    assert truth["spec"]["seed"] == SPEC.seed and truth["spec"]["creators"] == SPEC.items // 8
    assert len(truth["categories"]) == SPEC.categories
    assert set(truth["creator_home_categories"].values()) <= set(truth["categories"])
    creators = set(world.items["creator"].to_pylist())
    assert creators <= set(truth["creator_home_categories"])
    top = truth["users"]["top_categories"]
    assert len(top) == SPEC.users and all(len(set(v)) == 3 for v in top.values())
    assert len(truth["seasonality"]["weekly_monday_first"]) == 7


@pytest.mark.parametrize(
    "bad",
    [
        {"users": 0},
        {"items": -1},
        {"days": 0},
        {"categories": 0},
        {"creators": 0},
        {"seed": -1},
        {"days": 2.5},
        {"events_per_user_day": 0},
        {"events_per_user_day": float("nan")},
        {"initial_user_fraction": 1.5},
        {"interactions_per_session": 0.5},
        {"creator_share": 0.7, "explore_share": 0.5},
        {"start": datetime(2025, 1, 1)},
    ],
)
def test_invalid_spec_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid WorldSpec"):
        WorldSpec(**bad)


def test_start_mid_day_keeps_the_utc_profile_and_window(tmp_path: Path) -> None:
    start = datetime(2024, 6, 3, 12, 30, tzinfo=UTC)
    generate_world(WorldSpec(users=300, items=200, days=3, start=start), tmp_path)
    stamps = pq.read_table(tmp_path / "events.parquet")["timestamp"].cast(pa.int64()).to_numpy()
    assert stamps.min() >= micros(start) and stamps.max() < micros(start + timedelta(days=3))
    profile = np.array(json.loads((tmp_path / "truth.json").read_text())["seasonality"]["hourly"])
    counts = np.bincount((stamps // 3_600_000_000) % 24, minlength=24)
    assert np.corrcoef(counts, profile)[0, 1] > 0.8
