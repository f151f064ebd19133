"""Helpers the job definitions share: event windows, weights and time decay."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.config import Settings
from tastebud.jobs.base import InsufficientData, JobContext
from tastebud.jobs.clock import newest_event
from tastebud.jobs.outputs import index_key
from tastebud.stores import EventQuery

BATCH_ROWS = 1_000_000
PREFETCH = 2
MICROS_PER_DAY = 86_400 * 1_000_000


def event_weights(settings: Settings) -> dict[str, float]:
    return {name: spec.weight for name, spec in settings.events.types.items()}


def window_batches(
    context: JobContext, start: datetime | None, end: datetime
) -> Iterator[pa.RecordBatch]:
    """Events in [start, end) (``start`` None: from the first), in bounded-memory batches;
    checks for cancellation between.

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


def from_micros(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))


def micros(moment: datetime) -> int:
    """Exact microseconds since the epoch (float seconds lose the last digits)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def refusal(
    context: JobContext,
    message: str,
    *,
    namespace: str | None = None,
    reason: str = "insufficient_data",
    details: dict[str, Any] | None = None,
) -> InsufficientData:
    """An ``InsufficientData`` whose message also says what keeps serving (the list
    published under ``namespace``) and, when the store's data ends before the window does,
    the ``--as-of`` that would find it."""
    notes = [message]
    details = dict(details or {})
    if namespace is not None:
        try:
            raw = context.stores.online.get(index_key(namespace))
        except Exception:  # the note is a courtesy; the refusal stands without it
            raw = None
        header = json.loads(raw) if raw else {}
        # A placeholder (an empty list saying why) is not a result that keeps serving.
        serving = None if header.get("refused") else header.get("as_of")
        details["serving_as_of"] = serving
        notes.append(
            f"the list published as of {serving} keeps serving"
            if serving
            else "nothing was published before"
        )
    try:
        newest = newest_event(context.stores.events)
    except Exception:
        newest = None
    historical = timedelta(hours=context.settings.jobs.historical_after_hours)
    if newest is not None and context.end - newest > historical:
        details["newest_event"] = newest.isoformat()
        notes.append(
            f"the store's newest event is {newest.isoformat()}: for data that ends in the "
            "past, run as of it (`tastebud jobs run NAME --as-of "
            f"{newest.isoformat(timespec='seconds')}`)"
        )
    return InsufficientData("; ".join(notes), reason=reason, details=details)
