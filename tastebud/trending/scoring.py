"""The trending detector's numeric core: from the window's (item, hour) engagement to each
candidate's z-score (see ``detector`` for the model). Whole numpy arrays at every step: no
Python runs per item or per row, so scoring stays fast on large windows
(``benchmarks/bench_trending.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.config import TrendingSettings

HOUR_US = 3_600_000_000
# Shrinkage of an item's hour-of-day profile towards the catalog's, in units of engagement:
# an item needs a few dozen baseline events before its own daily cycle dominates.
SEASONAL_PRIOR = 24.0
# Variance floor in (weighted) events: an item with an empty baseline needs real volume.
VARIANCE_FLOOR = 1.0
# Engagement after which an item's own burst sizes outweigh the catalog's.
MEAN_SQUARE_PRIOR = 20.0

# Creation times: a table (item_id, created_at), a mapping, or a function that looks up the
# items it is given (so a big catalog is read only for the items that matter).
CreatedTimes = (
    Mapping[str, datetime | None]
    | pa.Table
    | Callable[[list[str]], Mapping[str, datetime | None] | pa.Table]
    | None
)


def to_micros(moment: datetime) -> int:
    """A timezone-aware moment in microseconds since the epoch (exact, no float)."""
    if moment.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _created_hours(item_ids: pa.Array, item_created: CreatedTimes, origin: int) -> np.ndarray:
    """Hours after the window's origin at which each item came to exist (<= 0: before it)."""
    if item_created is None:
        return np.zeros(len(item_ids))
    if callable(item_created):
        item_created = item_created(item_ids.to_pylist())
    if isinstance(item_created, pa.Table):
        known = item_created.column("item_id").combine_chunks()
        created = pc.cast(item_created.column("created_at"), pa.int64()).combine_chunks()
    else:
        dated = {key: value for key, value in item_created.items() if value is not None}
        known = pa.array(list(dated), pa.string())
        created = pa.array([to_micros(moment) for moment in dated.values()], pa.int64())
    taken = pc.take(created, pc.index_in(item_ids, value_set=known))
    created_us = pc.fill_null(taken, origin).to_numpy()
    return (created_us.astype(np.float64) - origin) / HOUR_US


def score(
    hourly: pa.Table,
    users: pa.Table,
    catalog_profile: np.ndarray,
    origin: int,
    n_baseline: int,
    n_recent: int,
    params: TrendingSettings,
    item_created: CreatedTimes,
    keep_all: bool = False,
) -> tuple[pa.Table, int]:
    """The numeric core: per-item matrices for the candidates only, then the z-scores.
    Every step works on whole numpy arrays (no Python per item or per row)."""
    if hourly.num_rows == 0:
        return _empty_scores(), 0
    cells = _Cells.of(hourly, users, origin, n_baseline)
    candidate, exposure = _candidates(cells, params, item_created, origin, n_baseline)
    count = int(candidate.sum())
    if count == 0:
        return _empty_scores(), 0
    z, lift, observed_total, expected_total = _z_scores(
        cells, candidate, exposure, catalog_profile, users, origin, n_baseline, n_recent, params
    )
    trending = (z >= params.z_threshold) & (lift >= params.min_lift)
    chosen = np.arange(count) if keep_all else np.flatnonzero(trending)
    ids = pc.take(cells.vocabulary, pa.array(np.flatnonzero(candidate)[chosen]))
    table = pa.table(
        {
            "item_id": ids,
            "score": pa.array(np.round(z[chosen], 4)),
            "lift": pa.array(np.round(np.minimum(lift[chosen], 1e6), 4)),
            "observed": pa.array(np.round(observed_total[chosen], 4)),
            "expected": pa.array(np.round(expected_total[chosen], 4)),
            "recent_events": pa.array(cells.recent_events[candidate][chosen].astype(np.int64)),
            "recent_users": pa.array(cells.recent_users[candidate][chosen].astype(np.int64)),
        }
    )
    if keep_all:
        table = table.append_column("trending", pa.array(trending[chosen]))
    # Ties broken by item id so the same input always gives the same order.
    order = pc.sort_indices(table, [("score", "descending"), ("item_id", "ascending")])
    return table.take(order), count


def _empty_scores() -> pa.Table:
    return pa.table(
        {
            "item_id": pa.array([], pa.string()),
            "score": pa.array([], pa.float64()),
            "lift": pa.array([], pa.float64()),
            "observed": pa.array([], pa.float64()),
            "expected": pa.array([], pa.float64()),
            "recent_events": pa.array([], pa.int64()),
            "recent_users": pa.array([], pa.int64()),
        }
    )


@dataclass
class _Cells:
    """The window's (item, hour) cells as arrays, items encoded densely, with each item's
    recent support (events, distinct users) and its users' burst weights."""

    vocabulary: pa.Array
    item: np.ndarray
    hour: np.ndarray
    w: np.ndarray
    hour_of_day: np.ndarray
    recent_events: np.ndarray
    recent_users: np.ndarray
    burst_w: np.ndarray
    burst_w2: np.ndarray

    @classmethod
    def of(cls, hourly: pa.Table, users: pa.Table, origin: int, n_baseline: int) -> _Cells:
        encoded = pc.dictionary_encode(hourly.column("item_id").combine_chunks())
        vocabulary: pa.Array = encoded.dictionary
        item = encoded.indices.to_numpy().astype(np.int64)
        hour = hourly.column("h").to_numpy()
        n = hourly.column("n").to_numpy()
        n_items = len(vocabulary)
        recent = hour >= n_baseline
        recent_events = np.bincount(item[recent], weights=n[recent], minlength=n_items)
        user_position = pc.index_in(users.column("item_id"), value_set=vocabulary)
        valid = pc.is_valid(user_position).to_numpy(zero_copy_only=False)
        position = pc.filter(user_position, valid).to_numpy()
        recent_users, burst_w, burst_w2 = np.zeros(n_items), np.zeros(n_items), np.zeros(n_items)
        for target, column in ((recent_users, "users"), (burst_w, "w"), (burst_w2, "w2")):
            target[position] = pc.filter(users.column(column), valid).to_numpy()
        return cls(
            vocabulary=vocabulary,
            item=item,
            hour=hour,
            w=hourly.column("w").to_numpy(),
            hour_of_day=(origin // HOUR_US + hour) % 24,
            recent_events=recent_events,
            recent_users=recent_users,
            burst_w=burst_w,
            burst_w2=burst_w2,
        )


def _candidates(
    cells: _Cells,
    params: TrendingSettings,
    item_created: CreatedTimes,
    origin: int,
    n_baseline: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Which items are judged (minimum support, long enough alive), and each item's hours
    of baseline exposure."""
    n_items = len(cells.vocabulary)
    # An item's life in the window starts when it was created or, for an item created inside
    # the window, at its first engagement (a catalog entry often precedes its launch).
    supported = (cells.recent_events >= params.min_events) & (
        cells.recent_users >= params.min_users
    )
    created_hours = np.zeros(n_items)
    if supported.any():  # creation times are looked up for supported items only
        created_hours[supported] = _created_hours(
            pc.filter(cells.vocabulary, pa.array(supported)), item_created, origin
        )
    first_hour = np.full(n_items, np.inf)
    np.minimum.at(first_hour, cells.item, cells.hour.astype(np.float64))
    born = np.where(created_hours > 0, np.maximum(created_hours, first_hour), created_hours)
    exposure = n_baseline - np.clip(born, 0, n_baseline)
    candidate = supported & (exposure >= params.min_history_hours) & (exposure > 0)
    return candidate, exposure


def _z_scores(
    cells: _Cells,
    candidate: np.ndarray,
    exposure: np.ndarray,
    catalog_profile: np.ndarray,
    users: pa.Table,
    origin: int,
    n_baseline: int,
    n_recent: int,
    params: TrendingSettings,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(z, lift, observed, expected) of each candidate: observed against the engagement its
    baseline (seasonal profile, smoothing) predicts, under a compound Poisson variance."""
    count = int(candidate.sum())
    index = np.full(len(cells.vocabulary), -1)
    index[candidate] = np.arange(count)
    rows = index[cells.item] >= 0
    local = index[cells.item[rows]]
    r_hour, r_w, r_hod = cells.hour[rows], cells.w[rows], cells.hour_of_day[rows]
    r_recent = r_hour >= n_baseline
    baseline_hod = np.zeros((count, 24))
    np.add.at(baseline_hod, (local[~r_recent], r_hod[~r_recent]), r_w[~r_recent])
    observed = np.zeros((count, n_recent))
    np.add.at(observed, (local[r_recent], r_hour[r_recent] - n_baseline), r_w[r_recent])
    sum_w, sum_w2 = cells.burst_w[candidate], cells.burst_w2[candidate]

    baseline_total = baseline_hod.sum(axis=1)
    hours_alive = exposure[candidate]
    daily_rate = baseline_total / hours_alive * 24.0
    if params.seasonality:
        profile = (baseline_hod + SEASONAL_PRIOR * catalog_profile) / (
            baseline_total[:, None] + SEASONAL_PRIOR
        )
    else:
        profile = np.full((count, 24), 1 / 24)
    recent_hod = (origin // HOUR_US + n_baseline + np.arange(n_recent)) % 24
    expected_hourly = daily_rate[:, None] * profile[:, recent_hod]
    decay = _decay(n_recent, params.smoothing_half_life_hours)
    observed_total = observed @ decay
    expected_total = expected_hourly @ decay
    # E[W^2] / E[W] of one user's burst (recent window), shrunk towards the catalog's.
    all_w = float(pc.sum(users.column("w")).as_py() or 0.0)
    pooled = float(pc.sum(users.column("w2")).as_py() or 0.0) / max(all_w, 1e-12)
    mean_square = (sum_w2 + MEAN_SQUARE_PRIOR * pooled) / (sum_w + MEAN_SQUARE_PRIOR)
    variance = mean_square * (
        (expected_hourly @ (decay**2)) * (1.0 + n_recent / hours_alive) + VARIANCE_FLOOR
    )
    z = (observed_total - expected_total) / np.sqrt(variance)
    lift = observed_total / np.maximum(expected_total, 1e-9)
    return z, lift, observed_total, expected_total


def _decay(n_recent: int, half_life_hours: float | None) -> np.ndarray:
    """Weights of the recent hours, oldest first, averaging 1: newer hours count more when
    smoothing is on."""
    if not half_life_hours:
        return np.ones(n_recent)
    age = np.arange(n_recent)[::-1]
    decay = np.exp2(-age / half_life_hours)
    return decay * (n_recent / decay.sum())
