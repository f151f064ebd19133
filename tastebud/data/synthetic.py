"""A seeded synthetic world: users, items and a stream of events with known structure.

Real data sets cannot tell us whether a model recovered the truth; a synthetic world can.
Users have sparse category tastes and favourite creators, items have power-law popularity
and content features that follow their category, sessions follow a daily cycle, and a few
items trend for a while. The latent truth goes to ``truth.json`` next to the parquet files.

The simulation streams day by day (one parquet row group per day), so a 20M-event world
fits in a few hundred MB. The same spec always produces byte-identical files.

Time: a world covers ``[start, start + days)``; ``WorldSpec.ending(end)`` places it so it
ends at ``end`` (``datasets generate`` and ``quickstart`` end it at the current UTC minute).
The seed alone fixes the latent world (users, tastes, items, creators, which items trend on
which days of the period); the calendar fixes the behaviour on top of it (the weekly and
hour-of-day cycles are in UTC), so the same seed ending at another time is the same world
with other events. Event and session ids carry ``world_id`` (the seed and a short hash of
the whole spec, start included), so events of two different worlds never share an id and
ingesting one world twice stores it once.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tastebud.data.synthetic_day import EVENT_TYPES, PAGES, DayEvents, simulate_day
from tastebud.data.synthetic_spec import WorldSpec as WorldSpec
from tastebud.data.synthetic_spec import spec_fingerprint as spec_fingerprint
from tastebud.data.synthetic_world import (
    DEVICES,
    FEATURE_DECIMALS,
    FEATURES,
    LOCALES,
    MICROS_PER_DAY,
    TITLE_ADJECTIVES,
    TITLE_NOUNS,
    World,
    build_world,
)
from tastebud.schemas import (
    EVENT_SCHEMA,
    EVENT_SCHEMA_VERSION,
    ITEM_SCHEMA,
    TIMESTAMP_TYPE,
    USER_SCHEMA,
    context_json,
)

TRUTH_VERSION = 2


@dataclass(frozen=True)
class WorldSummary:
    """What ``generate_world`` wrote, for the CLI to report."""

    out_dir: Path
    events: int
    users: int
    items: int
    days: int
    seed: int


def now_minute() -> datetime:
    """The current UTC time, down to the minute: the default end of a generated world."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def estimate_events(spec: WorldSpec) -> int:
    """Roughly how many events ``spec`` produces (within ~10%): users that exist on average
    (late arrivals count half) x days x events per user-day."""
    present = spec.initial_user_fraction + 0.5 * (1 - spec.initial_user_fraction)
    return round(spec.users * present * spec.days * spec.events_per_user_day)


def generate_world(
    spec: WorldSpec, out_dir: Path, progress: Callable[[int, int], None] | None = None
) -> WorldSummary:
    """Write events.parquet, items.parquet, users.parquet and truth.json to ``out_dir``.

    Files are written under temporary names and renamed at the end, so a crashed run never
    leaves a complete-looking but partial world. ``progress(done_days, total_days)`` is
    called after each simulated day.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start_us = _micros(spec.start)
    streams = np.random.SeedSequence(spec.seed).spawn(spec.days + 1)
    world = build_world(spec, np.random.default_rng(streams[0]), start_us)
    ids = _Ids(spec, world)

    pending = {
        name: out_dir / f".{name}.tmp"
        for name in ("events.parquet", "items.parquet", "users.parquet", "truth.json")
    }
    try:
        pq.write_table(items_table(world, ids), pending["items.parquet"], compression="zstd")
        pq.write_table(users_table(world, ids), pending["users.parquet"], compression="zstd")
        written = write_events(spec, world, ids, streams[1:], pending["events.parquet"], progress)
        truth = json.dumps(truth_document(spec, world, ids), separators=(",", ":"), sort_keys=True)
        pending["truth.json"].write_text(truth)
        for name, path in pending.items():
            os.replace(path, out_dir / name)
    finally:
        for path in pending.values():
            path.unlink(missing_ok=True)
    return WorldSummary(out_dir, written, spec.users, spec.items, spec.days, spec.seed)


def write_events(
    spec: WorldSpec,
    world: World,
    ids: _Ids,
    day_streams: list[np.random.SeedSequence],
    path: Path,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Simulate and append one day at a time (one row group per day); returns the count."""
    written, sessions = 0, 0
    with pq.ParquetWriter(path, EVENT_SCHEMA, compression="zstd") as writer:
        for day, stream in enumerate(day_streams):
            events = simulate_day(world, spec, day, np.random.default_rng(stream), sessions)
            sessions += events.sessions_used
            if len(events):
                writer.write_table(events_table(events, ids, spec.world_id, written))
                written += len(events)
            if progress is not None:
                progress(day + 1, spec.days)
    return written


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso(micros: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))).isoformat()


def _numbered(prefix: str, start: int, count: int, width: int) -> pa.Array:
    """prefix + zero-padded counter, built in Arrow (no Python loop per row)."""
    digits = pc.cast(pa.array(np.arange(start, start + count, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(
        pa.scalar(prefix), pc.utf8_lpad(digits, width=width, padding="0"), ""
    )


class _Ids:
    """External strings for the dense integer ids the simulation uses, built once."""

    def __init__(self, spec: WorldSpec, world: World):
        self.users = _numbered("u", 0, spec.users, max(6, len(str(spec.users - 1))))
        self.items = _numbered("i", 0, spec.items, max(6, len(str(spec.items - 1))))
        n_creators = len(world.creator_home)
        self.creators = _numbered("creator-", 0, n_creators, max(4, len(str(n_creators - 1))))
        self.categories = pa.array(world.category_names)
        self.user_devices = pa.array(DEVICES).take(pa.array(world.user_device))
        self.user_locales = pa.array(LOCALES).take(pa.array(world.user_locale))
        self.event_types = pa.array(EVENT_TYPES)
        self.pages = pa.array(
            [None, *(context_json({"page": page}) for page in PAGES)], pa.string()
        )


def events_table(events: DayEvents, ids: _Ids, world_id: str, first_event: int) -> pa.Table:
    """One day's arrays as an EVENT_SCHEMA table; event ids continue the run's counter."""
    n = len(events)
    users = pa.array(events.user)
    sessions = pc.cast(pa.array(events.session, pa.int64()), pa.string())
    return pa.Table.from_arrays(
        [
            _numbered(f"{world_id}-", first_event, n, 10),
            ids.users.take(users),
            ids.items.take(pa.array(events.item)),
            ids.event_types.take(pa.array(events.kind)),
            pa.array(events.value, pa.float64(), mask=np.isnan(events.value)),
            pa.array(events.timestamp_us, TIMESTAMP_TYPE),
            pc.binary_join_element_wise(
                f"{world_id}-s", pc.utf8_lpad(sessions, width=9, padding="0"), ""
            ),
            ids.user_devices.take(users),
            ids.user_locales.take(users),
            pa.array(np.full(n, EVENT_SCHEMA_VERSION, dtype=np.int8)),
            ids.pages.take(pa.array(events.page + 1)),
            pa.nulls(n, TIMESTAMP_TYPE),
        ],
        schema=EVENT_SCHEMA,
    )


def items_table(world: World, ids: _Ids) -> pa.Table:
    """The catalog: titles, creators, categories (primary first), JSON content attributes."""
    n = len(world.item_category)
    titles = pc.binary_join_element_wise(
        pa.array(TITLE_ADJECTIVES).take(pa.array(world.item_title_words[:, 0])),
        pa.array(TITLE_NOUNS).take(pa.array(world.item_title_words[:, 1])),
        " ",
    )
    has_second = world.item_secondary >= 0
    lengths = 1 + has_second.astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = np.empty(int(offsets[-1]), dtype=np.int64)
    flat[offsets[:-1]] = world.item_category
    flat[offsets[1:][has_second] - 1] = world.item_secondary[has_second]
    categories = pa.ListArray.from_arrays(pa.array(offsets), ids.categories.take(pa.array(flat)))
    return pa.Table.from_arrays(
        [
            ids.items,
            titles,
            ids.creators.take(pa.array(world.item_creator)),
            categories,
            pa.array(world.item_created_us, TIMESTAMP_TYPE),
            pa.array([_item_attributes(world, i) for i in range(n)], pa.string()),
            pa.array(world.item_active),
        ],
        schema=ITEM_SCHEMA,
    )


def _item_attributes(world: World, item: int) -> str:
    features = world.item_features[item]
    attributes: dict[str, Any] = {
        name: round(float(features[k]), FEATURE_DECIMALS[k]) for k, name in enumerate(FEATURES)
    }
    attributes["duration_sec"] = int(attributes["duration_sec"])
    attributes["price"] = float(world.item_price[item])
    tags = world.category_tags[world.item_category[item]]
    attributes["tags"] = [tags[t] for t in world.item_tags[item] if t >= 0]
    return json.dumps(attributes, separators=(",", ":"))


def users_table(world: World, ids: _Ids) -> pa.Table:
    """Users with their stable device and locale as JSON attributes (tastes stay latent)."""
    attributes = pc.binary_join_element_wise(
        '{"device_type":"', ids.user_devices, '","locale":"', ids.user_locales, '"}', ""
    )
    return pa.Table.from_arrays(
        [ids.users, pa.array(world.user_created_us, TIMESTAMP_TYPE), attributes],
        schema=USER_SCHEMA,
    )


def truth_document(spec: WorldSpec, world: World, ids: _Ids) -> dict[str, Any]:
    """The latent structure a model should recover, keyed by the external ids and names."""
    names = world.category_names
    creator_ids = ids.creators.to_pylist()
    spec_fields = dataclasses.asdict(spec)
    spec_fields.update(start=spec.start.isoformat(), creators=spec.resolved_creators)
    spec_fields["trending_band"] = list(spec.trending_band)
    new_items = world.item_created_us >= world.start_us
    new_users = world.user_created_us >= world.start_us
    return {
        "version": TRUTH_VERSION,
        "world_id": spec.world_id,
        "spec": spec_fields,
        "period": {"start": spec.start.isoformat(), "end": spec.end.isoformat()},
        "categories": names,
        "category_weights": _rounded(world.category_weights, 4),
        "category_feature_means": {
            name: {
                **{f: round(float(world.feature_means[c, k]), 3) for k, f in enumerate(FEATURES)},
                "price_median": round(float(world.price_medians[c]), 2),
            }
            for c, name in enumerate(names)
        },
        "category_tags": dict(zip(names, world.category_tags, strict=True)),
        "creator_home_categories": {
            creator: names[home]
            for creator, home in zip(creator_ids, world.creator_home.tolist(), strict=True)
        },
        "trending": [
            {
                "item_id": ids.items[trend.item].as_py(),
                "start": _iso(world.start_us + trend.start_day * MICROS_PER_DAY),
                "end": _iso(world.start_us + trend.end_day * MICROS_PER_DAY),
                "boost": trend.boost,
            }
            for trend in world.trends
        ],
        "seasonality": {
            "timezone": "UTC",
            "hourly": _rounded(world.hourly, 5),
            "weekly_monday_first": _rounded(world.weekly, 4),
        },
        "arrivals": {
            "users_at_start": int((~new_users).sum()),
            "users_arriving": int(new_users.sum()),
            "items_at_start": int((~new_items).sum()),
            "items_arriving": int(new_items.sum()),
            "arrivals_spread": "uniform over the period; an item is offered from the start of "
            "the simulated day after its created_at, a user acts only after created_at",
            "new_item_boost": spec.new_item_boost,
            "new_item_half_life_days": spec.new_item_half_life_days,
        },
        "users": _truth_users(world, ids),
    }


def _truth_users(world: World, ids: _Ids) -> dict[str, Any]:
    """Each user's top categories and favourite creators, by external id and name."""
    names = world.category_names
    user_ids = ids.users.to_pylist()
    creator_ids = ids.creators.to_pylist()
    return {
        "top_categories": {
            user: [names[c] for c in top]
            for user, top in zip(user_ids, world.user_top_categories.tolist(), strict=True)
        },
        "favorite_creators": {
            user: sorted({creator_ids[c] for c in favorites})
            for user, favorites in zip(user_ids, world.user_favorites.tolist(), strict=True)
        },
    }


def _rounded(values: np.ndarray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]
