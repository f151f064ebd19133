"""Helpers the job definitions share: event windows, weights and time decay."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.config import Settings
from tastebud.jobs.base import JobContext
from tastebud.stores import EventQuery

BATCH_ROWS = 1_000_000
PREFETCH = 2
MICROS_PER_DAY = 86_400 * 1_000_000


def event_weights(settings: Settings) -> dict[str, float]:
    return {name: spec.weight for name, spec in settings.events.types.items()}


def window_batches(context: JobContext, start: datetime, end: datetime) -> Iterator[pa.RecordBatch]:
    """Events in [start, end), in bounded-memory batches; checks for cancellation between.

    The store decodes the next batch in a background thread while the caller computes on
    this one (both mostly release the GIL), at most ``PREFETCH`` batches ahead.
    """
    query = EventQuery(start=start, end=end)
    batches: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(PREFETCH)
    stop = threading.Event()

    def offer(item: pa.RecordBatch | BaseException | None) -> bool:
        """Queue ``item`` unless the consumer has gone away."""
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in context.stores.events.iter_batches(query, batch_size=BATCH_ROWS):
                if not offer(batch):
                    return
            offer(None)
        except BaseException as error:  # handed to the consumer, raised there
            offer(error)

    reader = threading.Thread(target=produce, name=f"read-{context.job_name}", daemon=True)
    reader.start()
    try:
        while True:
            item = batches.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            context.check()
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def weight_column(batch: pa.RecordBatch | pa.Table, weights: dict[str, float]) -> np.ndarray:
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


def micros(moment: datetime) -> int:
    """Exact microseconds since the epoch (float seconds lose the last digits)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
