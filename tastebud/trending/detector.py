"""The trending detector: which items are gaining engagement unusually fast right now.

For every item, engagement (event weights, negative feedback ignored) is bucketed by hour.
The last ``recent_hours`` are compared with what the ``baseline_days`` before them predict:

* the baseline gives the item's daily rate, counted only over the time the item existed
  (``created_at`` from the catalog), so a brand-new item is not "trending" merely because it
  had no past; items younger than ``min_history_hours`` are not judged at all;
* the seasonality guard spreads that daily rate over the hours of the day the way the same
  hours of previous days did (the item's own hour-of-day profile, shrunk towards the whole
  catalog's), so an evening peak is expected in the evening and not flagged;
* optional exponential smoothing weights the recent hours towards the newest;
* the score is a z-score of observed against expected engagement under a compound Poisson
  model (variance = expected sum of squared event weights), plus the baseline's own
  uncertainty; an item trends when z >= ``z_threshold``, observed/expected >= ``min_lift``
  and it has minimum support (``min_events`` events from ``min_users`` distinct users).

Everything runs in DuckDB and numpy over Arrow tables; nothing here touches a store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.config import TrendingSettings
from tastebud.trending.scoring import HOUR_US, CreatedTimes, score, to_micros

ENGAGEMENT_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("user_id", pa.string()),
        ("ts_us", pa.int64()),
        ("weight", pa.float64()),
    ]
)


_DUCKDB: duckdb.DuckDBPyConnection | None = None
_DUCKDB_LOCK = threading.Lock()


def _duckdb() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process (opening one costs ~0.1 s); callers take cursors."""
    global _DUCKDB
    with _DUCKDB_LOCK:
        if _DUCKDB is None:
            _DUCKDB = duckdb.connect()
        return _DUCKDB


# Categories: a table (item_id, categories) or a function that looks up the items it is given.
ItemCategories = pa.Table | Callable[[list[str]], Mapping[str, list[str]]] | None


class StaleDataError(RuntimeError):
    """The newest event is too old to say what is trending now; nothing is published."""


@dataclass(frozen=True)
class TrendingResult:
    """What one detection found. ``items`` holds every trending item, best first, with its
    score and evidence; ``lists`` the top N per category (``"*"`` for all items)."""

    as_of: datetime
    items: pa.Table
    lists: dict[str, list[dict[str, Any]]]
    candidate_count: int
    events: int
    newest_event: datetime | None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def final_count(self) -> int:
        return self.items.num_rows


def _datetime(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))


def engagement(table: pa.Table | pa.RecordBatch, weights: Mapping[str, float]) -> pa.Table:
    """Events (EVENT_SCHEMA columns) as engagement rows: item, user, time in microseconds and
    the event type's weight; types with a weight <= 0 (skips, dislikes) are dropped."""
    positive = {name: float(w) for name, w in weights.items() if w > 0}
    names = pa.array(list(positive), pa.string())
    values = pa.array(list(positive.values()), pa.float64())
    index = pc.index_in(table.column("event_type"), value_set=names)
    keep = pc.is_valid(index)
    weight = pc.take(values, pc.filter(index, keep))
    timestamps = pc.filter(table.column("timestamp"), keep)
    return pa.Table.from_arrays(
        [
            pc.filter(table.column("item_id"), keep),
            pc.filter(table.column("user_id"), keep),
            pc.cast(timestamps, pa.int64()),
            weight,
        ],
        schema=ENGAGEMENT_SCHEMA,
    )


def window(as_of: datetime, params: TrendingSettings) -> tuple[datetime, datetime]:
    """The [start, end) span of events a detection at ``as_of`` reads."""
    hours = params.baseline_days * 24 + params.recent_hours
    return as_of - timedelta(hours=hours), as_of


def check_freshness(newest: datetime | None, as_of: datetime, params: TrendingSettings) -> None:
    """Refuse to judge "now" from old data: a stalled pipeline would freeze the list."""
    limit = as_of - timedelta(hours=params.max_staleness_hours)
    if newest is None or newest < limit:
        seen = newest.isoformat() if newest else "none"
        raise StaleDataError(
            f"newest event ({seen}) is older than {params.max_staleness_hours:g} h before "
            f"{as_of.isoformat()}: events are not arriving"
        )


@dataclass(frozen=True)
class TrendingAggregates:
    """The three scans of the event window the detector needs, computed by DuckDB here
    (``aggregate``) or by another engine (``tastebud.engines.spark``) with the same columns:

    * ``recent``: item_id, users, w, w2, n over the recent window (per-user hourly bursts);
    * ``hourly``: item_id, h (hours since the window's origin), w, n for supported items;
    * ``by_hour``: hod, w (baseline only), newest, oldest, n, recent_n over the window."""

    recent: pa.Table
    hourly: pa.Table
    by_hour: pa.Table

    @property
    def events(self) -> int:
        return int(pc.sum(self.by_hour.column("n")).as_py() or 0)

    @property
    def recent_events(self) -> int:
        return int(pc.sum(self.by_hour.column("recent_n")).as_py() or 0)

    @property
    def newest_us(self) -> int | None:
        return pc.max(self.by_hour.column("newest")).as_py() if self.by_hour.num_rows else None

    @property
    def oldest_us(self) -> int | None:
        return pc.min(self.by_hour.column("oldest")).as_py() if self.by_hour.num_rows else None


def bounds(as_of: datetime, params: TrendingSettings) -> tuple[int, int, int]:
    """(origin, recent start, as_of) in epoch microseconds: the window and its recent part."""
    as_of_us = to_micros(as_of)
    origin = as_of_us - (params.baseline_days * 24 + params.recent_hours) * HOUR_US
    return origin, as_of_us - params.recent_hours * HOUR_US, as_of_us


def aggregate(events: pa.Table, as_of: datetime, params: TrendingSettings) -> TrendingAggregates:
    """The detector's scans of engagement rows (see ``engagement``), in DuckDB."""
    origin, recent_start, as_of_us = bounds(as_of, params)
    connection = _duckdb().cursor()
    try:
        connection.register("engagement", events)
        # One user's engagement with an item within an hour arrives as one burst (a view, a
        # click, a purchase): users, not events, are the independent arrivals, so the
        # variance is built from per-user sums (over the recent window: cheap, and current).
        recent = connection.sql(
            f"""
            SELECT item_id, count(DISTINCT user_id) AS users, sum(b) AS w, sum(b * b) AS w2,
                   CAST(sum(n) AS BIGINT) AS n
            FROM (
                SELECT item_id, user_id, ts_us // {HOUR_US} AS h, sum(weight) AS b,
                       count(*) AS n
                FROM engagement WHERE ts_us >= {recent_start} AND ts_us < {as_of_us}
                GROUP BY ALL
            ) GROUP BY item_id
            """
        ).to_arrow_table()
        # Hour by hour only for the items with enough recent support: a catalog of 50k items
        # over 8 days is 10M (item, hour) groups, the supported few thousand a fraction.
        supported = supported_items(recent, params)
        connection.register("supported", supported)
        hourly = connection.sql(
            f"""
            SELECT item_id, CAST((ts_us - {origin}) // {HOUR_US} AS BIGINT) AS h,
                   sum(weight) AS w, count(*) AS n
            FROM engagement
            WHERE ts_us >= {origin} AND ts_us < {as_of_us}
              AND item_id IN (SELECT item_id FROM supported)
            GROUP BY ALL
            """
        ).to_arrow_table()
        # The catalog's hour-of-day profile over the baseline (the same hours of previous
        # days), and the newest and oldest event and the counts, in one scan.
        by_hour = connection.sql(
            f"""
            SELECT CAST((ts_us // {HOUR_US}) % 24 AS BIGINT) AS hod,
                   coalesce(sum(weight) FILTER (WHERE ts_us < {recent_start}), 0) AS w,
                   max(ts_us) AS newest, min(ts_us) AS oldest, count(*) AS n,
                   count(*) FILTER (WHERE ts_us >= {recent_start}) AS recent_n
            FROM engagement WHERE ts_us >= {origin} AND ts_us < {as_of_us} GROUP BY ALL
            """
        ).to_arrow_table()
    finally:
        connection.close()
    return TrendingAggregates(recent=recent, hourly=hourly, by_hour=by_hour)


def supported_items(recent: pa.Table, params: TrendingSettings) -> pa.Table:
    """item_id of the items with enough recent events and users to be judged."""
    return recent.filter(
        pc.and_(
            pc.greater_equal(recent.column("n"), params.min_events),
            pc.greater_equal(recent.column("users"), params.min_users),
        )
    ).select(["item_id"])


def detect(
    events: pa.Table,
    as_of: datetime,
    params: TrendingSettings,
    *,
    item_created: CreatedTimes = None,
    item_categories: ItemCategories = None,
    keep_all: bool = False,
) -> TrendingResult:
    """Detect trending items at ``as_of`` from engagement rows (see ``engagement``).

    ``item_created`` (item_id -> created_at, a table with those columns, or a function that
    looks up the ids it is given) lets the baseline count only the time an item existed;
    without it every item is assumed to be old. ``item_categories`` (a table of item_id,
    categories: list<string>, or a lookup function) builds the per-category lists; both
    lookups are called for the few supported or trending items only.
    ``keep_all`` returns every judged candidate (with a ``trending`` flag) instead of only
    the trending ones, for analysis.
    """
    return detect_aggregates(
        aggregate(events, as_of, params),
        as_of,
        params,
        item_created=item_created,
        item_categories=item_categories,
        keep_all=keep_all,
    )


def detect_aggregates(
    aggregates: TrendingAggregates,
    as_of: datetime,
    params: TrendingSettings,
    *,
    item_created: CreatedTimes = None,
    item_categories: ItemCategories = None,
    keep_all: bool = False,
) -> TrendingResult:
    """``detect`` from the window's scans, whichever engine computed them."""
    origin, _, _ = bounds(as_of, params)
    n_baseline = params.baseline_days * 24
    n_recent = params.recent_hours
    by_hour = aggregates.by_hour
    newest_us = aggregates.newest_us
    total = aggregates.events
    newest_event = _datetime(newest_us) if newest_us is not None else None
    catalog_profile = np.zeros(24)
    catalog_profile[by_hour.column("hod").to_numpy()] = by_hour.column("w").to_numpy()
    if catalog_profile.sum() > 0:
        catalog_profile /= catalog_profile.sum()
    else:
        catalog_profile[:] = 1 / 24
    scored, candidates = score(
        aggregates.hourly,
        aggregates.recent,
        catalog_profile,
        origin,
        n_baseline,
        n_recent,
        params,
        item_created,
        keep_all,
    )
    flagged = scored.filter(scored.column("trending")) if keep_all and scored.num_rows else scored
    lists = _top_lists(flagged, item_categories, params.top_n)
    return TrendingResult(
        as_of=as_of,
        items=scored,
        lists=lists,
        candidate_count=candidates,
        events=int(total),
        newest_event=newest_event,
        params=params.model_dump(),
    )


def _top_lists(
    scored: pa.Table, item_categories: ItemCategories, top_n: int
) -> dict[str, list[dict[str, Any]]]:
    """The top ``top_n`` overall (``"*"``) and within each category an item belongs to."""
    rows = scored.to_pylist()
    lists: dict[str, list[dict[str, Any]]] = {"*": _entries(rows[:top_n])}
    if item_categories is None or not rows:
        return lists
    if callable(item_categories):
        categories = dict(item_categories([row["item_id"] for row in rows]))
    else:
        categories = dict(
            zip(
                item_categories.column("item_id").to_pylist(),
                item_categories.column("categories").to_pylist(),
                strict=True,
            )
        )
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for category in categories.get(row["item_id"]) or ():
            bucket = grouped.setdefault(category, [])
            if len(bucket) < top_n:
                bucket.append(row)
    for category, members in sorted(grouped.items()):
        lists[category] = _entries(members)
    return lists


def _entries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "item_id": row["item_id"],
            "score": row["score"],
            "lift": row["lift"],
            "rank": rank,
        }
        for rank, row in enumerate(rows, start=1)
    ]
