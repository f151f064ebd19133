"""The local engine: the event log streamed from the store in bounded batches, aggregated
with Arrow compute, DuckDB and numpy in this process. The default, and the reference the
Spark engine is held equal to."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.engines.base import CATEGORY_SCORES, ITEM_SCORES, Engine, EventSource
from tastebud.schemas import EVENT_SCHEMA
from tastebud.stores import EventQuery

if TYPE_CHECKING:
    from tastebud.config import EventTypeSpec, TrendingSettings
    from tastebud.data.matrix import InteractionMatrix, MatrixOptions
    from tastebud.trending.detector import TrendingAggregates

BATCH_ROWS = 1_000_000
PREFETCH = 2
MICROS_PER_DAY = 86_400 * 1_000_000


def micros(moment: datetime) -> int:
    """Exact microseconds since the epoch (float seconds lose the last digits)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def batches(source: EventSource, start: datetime | None, end: datetime) -> Iterator[pa.RecordBatch]:
    """Events in [start, end) (``start`` None: from the first), in bounded-memory batches;
    checks for cancellation between.

    The store decodes the next batch in a background thread while the caller computes on
    this one (both mostly release the GIL), at most ``PREFETCH`` batches ahead.
    """
    query = EventQuery(start=start, end=end)
    pending: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(PREFETCH)
    stop = threading.Event()

    def offer(item: pa.RecordBatch | BaseException | None) -> bool:
        """Queue ``item`` unless the consumer has gone away."""
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in source.events.iter_batches(query, batch_size=BATCH_ROWS):
                if not offer(batch):
                    return
            offer(None)
        except BaseException as error:  # handed to the consumer, raised there
            offer(error)

    reader = threading.Thread(target=produce, name=f"read-{source.name}", daemon=True)
    reader.start()
    try:
        while True:
            item = pending.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            source.check()
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def weight_column(batch: pa.RecordBatch | pa.Table, weights: Mapping[str, float]) -> np.ndarray:
    """Each event's type weight (0 for types no longer configured)."""
    names = pa.array(list(weights), pa.string())
    values = np.append(np.array(list(weights.values()), dtype=np.float64), 0.0)
    index = pc.fill_null(pc.index_in(batch.column("event_type"), value_set=names), len(weights))
    return values[index.to_numpy()]


def decay_column(
    batch: pa.RecordBatch | pa.Table, end_us: int, half_life_days: float
) -> np.ndarray:
    """2^(-age / half-life) of each event, age measured back from the interval's end."""
    timestamps = pc.cast(batch.column("timestamp"), pa.int64()).to_numpy()
    age_days = (end_us - timestamps) / MICROS_PER_DAY
    return np.exp2(-np.maximum(age_days, 0.0) / half_life_days)


class LocalEngine(Engine):
    name = "local"

    def item_scores(
        self,
        source: EventSource,
        start: datetime | None,
        end: datetime,
        *,
        weights: Mapping[str, float],
        half_life_days: float | None,
    ) -> pa.Table:
        end_us = micros(end)
        partials = []
        for batch in batches(source, start, end):
            score = weight_column(batch, weights)
            if half_life_days is not None:
                score = score * decay_column(batch, end_us, half_life_days)
            part = pa.table({"item_id": batch.column("item_id"), "score": score})
            partials.append(
                part.group_by("item_id").aggregate([("score", "sum"), ("score", "count")])
            )
        if not partials:
            return ITEM_SCORES.empty_table()
        combined = (
            pa.concat_tables(partials)
            .group_by("item_id")
            .aggregate([("score_sum", "sum"), ("score_count", "sum")])
        )
        return pa.Table.from_arrays(
            [
                combined.column("item_id"),
                combined.column("score_sum_sum"),
                pc.cast(combined.column("score_count_sum"), pa.int64()),
            ],
            schema=ITEM_SCORES,
        )

    def category_scores(
        self,
        source: EventSource,
        start: datetime,
        end: datetime,
        *,
        weights: Mapping[str, float],
        half_life_days: float,
        item_categories: pa.Table,
    ) -> tuple[pa.Table, int]:
        end_us = micros(end)
        partials = []
        events = 0
        for batch in batches(source, start, end):
            events += batch.num_rows
            score = weight_column(batch, weights) * decay_column(batch, end_us, half_life_days)
            part = pa.table(
                {
                    "user_id": batch.column("user_id"),
                    "item_id": batch.column("item_id"),
                    "score": score,
                }
            )
            partials.append(part.group_by(["user_id", "item_id"]).aggregate([("score", "sum")]))
        if not partials:
            return CATEGORY_SCORES.empty_table(), 0
        pairs = (
            pa.concat_tables(partials)
            .group_by(["user_id", "item_id"])
            .aggregate([("score_sum", "sum")])
        )
        joined = pairs.join(item_categories, "item_id", join_type="inner")
        totals = joined.group_by(["user_id", "category"]).aggregate([("score_sum_sum", "sum")])
        table = pa.Table.from_arrays(
            [
                totals.column("user_id"),
                totals.column("category"),
                totals.column("score_sum_sum_sum"),
            ],
            schema=CATEGORY_SCORES,
        )
        return table, events

    def trending_aggregates(
        self,
        source: EventSource,
        *,
        weights: Mapping[str, float],
        as_of: datetime,
        params: TrendingSettings,
    ) -> TrendingAggregates:
        # lazy: the detector loads duckdb; only the trending job needs it
        from tastebud.trending.detector import aggregate, engagement, window

        start, end = window(as_of, params)
        parts = [engagement(batch, weights) for batch in batches(source, start, end)]
        events = (
            pa.concat_tables(parts) if parts else engagement(EVENT_SCHEMA.empty_table(), weights)
        )
        return aggregate(events, as_of, params)

    def interaction_matrix(
        self,
        source: EventSource,
        end: datetime,
        *,
        options: MatrixOptions,
        event_types: Mapping[str, EventTypeSpec],
    ) -> InteractionMatrix:
        # lazy: scipy (through the matrix modules) loads only when a job trains
        from tastebud.data.interactions import read_event_store
        from tastebud.data.matrix import build_matrix

        log = read_event_store(source.events, EventQuery(end=end))
        return build_matrix(log, options, dict(event_types))
