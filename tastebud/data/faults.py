"""Faults seeded into an event log, to rehearse the data-quality checks and their alerts.

Each function takes events (EVENT_SCHEMA) and the window ``[start, end)`` it breaks, and
returns the events as a broken producer would have delivered them; events outside the
window are untouched. The tests of ``tastebud.quality`` and
``benchmarks/bench_data_quality_alarms.py --seeded`` use them on generated worlds, so the
problem each check must catch is written once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def in_window(events: pa.Table, start: datetime, end: datetime) -> pa.ChunkedArray:
    """Mask of the events with ``start <= timestamp < end``."""
    stamp = events.column("timestamp")
    return pc.and_(
        pc.greater_equal(stamp, pa.scalar(start, stamp.type)),
        pc.less(stamp, pa.scalar(end, stamp.type)),
    )


def _replace(events: pa.Table, name: str, values: pa.ChunkedArray | pa.Array) -> pa.Table:
    index = events.schema.get_field_index(name)
    return events.set_column(index, events.schema.field(name), values)


def schema_break(events: pa.Table, start: datetime, end: datetime) -> pa.Table:
    """A producer that sends ratings on a 1-100 scale and negative play durations."""
    window = in_window(events, start, end)
    kind, value = events.column("event_type"), events.column("value")
    broken = pc.if_else(pc.and_(window, pc.equal(kind, "rating")), pc.multiply(value, 20.0), value)
    broken = pc.if_else(pc.and_(window, pc.equal(kind, "play")), pc.negate(broken), broken)
    return _replace(events, "value", broken)


def stalled_source(
    events: pa.Table, start: datetime, end: datetime, device_type: str = "other"
) -> pa.Table:
    """One source (the devices of ``device_type``) stops sending."""
    stalled = pc.and_(
        in_window(events, start, end), pc.equal(events.column("device_type"), device_type)
    )
    return events.filter(pc.invert(stalled))


def volume_drop(
    events: pa.Table, start: datetime, end: datetime, share: float = 0.5, seed: int = 0
) -> pa.Table:
    """``share`` of the window's events are lost (a partial outage)."""
    coin = pa.array(np.random.default_rng(seed).random(events.num_rows) < share)
    return events.filter(pc.invert(pc.and_(in_window(events, start, end), coin)))


def popularity_shift(events: pa.Table, start: datetime, end: datetime, seed: int = 1) -> pa.Table:
    """Every item's events go to another item: the popularity of items reshuffled."""
    ids = pc.unique(events.column("item_id"))
    shuffled = ids.take(pa.array(np.random.default_rng(seed).permutation(len(ids))))
    moved = shuffled.take(pc.index_in(events.column("item_id"), value_set=ids))
    return _replace(
        events,
        "item_id",
        pc.if_else(in_window(events, start, end), moved, events.column("item_id")),
    )


def unknown_user_surge(
    events: pa.Table, start: datetime, end: datetime, share: float = 0.5, seed: int = 2
) -> pa.Table:
    """``share`` of the window's events come from users never seen before."""
    users = events.column("user_id")
    coin = pa.array(np.random.default_rng(seed).random(len(users)) < share)
    picked = pc.and_(in_window(events, start, end), coin)
    renamed = pc.binary_join_element_wise("new-", users, "")
    return _replace(events, "user_id", pc.if_else(picked, renamed, users))


def busiest_hour(events: pa.Table, start: datetime, end: datetime) -> datetime:
    """The start of the hour with the most events in ``[start, end)``."""
    window = in_window(events, start, end).to_numpy(zero_copy_only=False)
    hours = pc.cast(events.column("timestamp"), pa.int64()).to_numpy()[window] // 3_600_000_000
    if len(hours) == 0:
        raise ValueError("no event in the window")
    busiest = int(np.bincount(hours - hours.min()).argmax() + hours.min())
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=busiest)
