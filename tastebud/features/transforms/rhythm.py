"""When a user is active, as a feature view computed in Python per user (an
``entity_python`` source): the UTC hour of day they are most active in, and the median
time between their consecutive events. Each user's values come from that user's events
only, so Spark computes them partition by partition with this same function."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MICROS_PER_HOUR = 3_600_000_000


def user_rhythm(events: pa.Table, as_of: datetime) -> pa.Table | None:
    """Per user: ``peak_hour`` (0-23, the earliest of equals), ``median_gap_hours`` (null
    with fewer than two events) and ``active_hours`` (distinct clock hours with events).
    ``as_of`` is the snapshot's time (the window ends there; nothing here needs it)."""
    if events.num_rows == 0:
        return None
    micros = pc.cast(events.column("timestamp"), pa.int64()).to_numpy()
    users = events.column("user_id").combine_chunks()
    order = np.lexsort((micros, users.to_numpy(zero_copy_only=False)))
    users = users.take(pa.array(order))
    micros = micros[order]
    ids, starts = _runs(users)
    hours = micros // MICROS_PER_HOUR
    return pa.table(
        {
            "entity_id": ids,
            "peak_hour": _peak_hour(hours % 24, starts),
            "median_gap_hours": _median_gaps(micros, starts),
            "active_hours": np.add.reduceat(_new_values(hours, starts), starts),
        }
    )


def _runs(sorted_ids: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The distinct ids of a sorted array and where each one's run starts."""
    values = sorted_ids.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return sorted_ids.take(pa.array(starts)), starts


def _new_values(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """1 where a (per run sorted) value differs from the one before it in its run."""
    new = np.r_[True, values[1:] != values[:-1]].astype(np.int64)
    new[starts] = 1
    return new


def _peak_hour(hour_of_day: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per run, the most frequent hour of day (the smallest among equals)."""
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(hour_of_day)]))
    counts = np.zeros((len(starts), 24), dtype=np.int64)
    np.add.at(counts, (run, hour_of_day), 1)
    return counts.argmax(axis=1).astype(np.int64)


def _median_gaps(micros: np.ndarray, starts: np.ndarray) -> pa.Array:
    """Per run (times sorted within it), the median gap between consecutive times, hours."""
    ends = np.r_[starts[1:], len(micros)]
    gaps = np.diff(micros).astype(np.float64) / MICROS_PER_HOUR
    medians: list[float | None] = []
    for first, last in zip(starts, ends, strict=True):
        own = gaps[first : last - 1]  # the gaps inside this run
        medians.append(float(np.median(own)) if len(own) else None)
    return pa.array(medians, pa.float64())
