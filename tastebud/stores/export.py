"""The event log as Parquet partitioned by day, at any fsspec URL: what Spark (or DuckDB,
Trino, a data lake) reads instead of the event store itself.

Layout: ``{url}/day=YYYY-MM-DD/part-{run}.parquet``, the Hive convention Spark, DuckDB and
pyarrow discover by themselves. Works from any ``EventStore`` (the embedded store's segments
and tail, or PostgreSQL) through ``iter_batches``, so memory stays bounded by one batch plus
one open writer per day.

An export is first written under ``{url}/_tmp-{run}/`` (names starting with ``_`` are hidden
from Spark's and pyarrow's dataset discovery), and each day's folder is moved into place only
once every batch is written: an export interrupted midway leaves no partial partition behind
(on local disk and HDFS a move is atomic; on object stores each file is one object). A day
exported again replaces the earlier copy of that day.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tastebud.schemas import EVENT_SCHEMA
from tastebud.stores.base import EventQuery, EventStore

MICROS_PER_DAY = 86_400 * 1_000_000
BATCH_ROWS = 1_000_000


class ExportTargetError(ValueError):
    """The URL names no filesystem fsspec can open: the caller's mistake, before anything
    is read or written."""


@dataclass
class ExportResult:
    """What one export wrote: rows per day (``YYYY-MM-DD``) and where."""

    url: str
    days: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.days.values())


def export_events(
    events: EventStore,
    url: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: Sequence[str] | None = None,
    batch_size: int = BATCH_ROWS,
    check: Callable[[], None] | None = None,
) -> ExportResult:
    """Write the events in [start, end) under ``url`` partitioned by day; returns the rows
    per day. ``columns`` keeps only those (default: every event column). ``check``, when
    given, is called between batches (a job's cancellation check)."""
    names = list(columns or EVENT_SCHEMA.names)
    unknown = sorted(set(names) - set(EVENT_SCHEMA.names))
    if unknown:
        raise ValueError(f"unknown event columns {unknown}; known: {EVENT_SCHEMA.names}")
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as error:  # an unknown protocol, its package missing
        raise ExportTargetError(f"cannot write to {url}: {error}") from None
    root = root.rstrip("/")
    run = uuid.uuid4().hex[:12]
    staging = f"{root}/_tmp-{run}"
    fs.makedirs(staging, exist_ok=True)
    writers = _DayWriters(fs, staging, run, pa.schema([EVENT_SCHEMA.field(n) for n in names]))
    result = ExportResult(url=url)
    moved = False
    try:
        query = EventQuery(start=start, end=end)
        for batch in events.iter_batches(query, batch_size=batch_size):
            if check is not None:
                check()
            for label, part in _day_slices(batch, names):
                writers.write(label, part)
                result.days[label] = result.days.get(label, 0) + part.num_rows
        writers.close()
        for label in sorted(result.days):
            target = f"{root}/day={label}"
            if fs.exists(target):
                fs.rm(target, recursive=True)
            fs.mv(f"{staging}/day={label}", target, recursive=True)
        moved = True
    finally:
        writers.abandon()
        if fs.exists(staging):
            fs.rm(staging, recursive=True)
        if not moved:
            result.days.clear()
    return result


def _day_slices(batch: pa.RecordBatch, names: list[str]) -> Iterator[tuple[str, pa.Table]]:
    """The batch's ``names`` columns cut into one slice per UTC day, labelled YYYY-MM-DD."""
    if batch.num_rows == 0:
        return
    days = pc.cast(batch.column("timestamp"), pa.int64()).to_numpy() // MICROS_PER_DAY
    # One sort, then a slice per day (a filter per day would rescan the batch).
    order = np.argsort(days, kind="stable")
    table = pa.Table.from_batches([batch]).select(names).take(order)
    days = days[order]
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    for first, stop in zip(starts, np.r_[starts[1:], len(days)], strict=True):
        yield str(np.datetime64(int(days[first]), "D")), table.slice(first, stop - first)


class _DayWriters:
    """One open Parquet writer per day folder under the staging folder."""

    def __init__(self, fs: Any, staging: str, run: str, schema: pa.Schema) -> None:
        self.fs, self.staging, self.run, self.schema = fs, staging, run, schema
        self.open: dict[str, tuple[Any, pq.ParquetWriter]] = {}

    def write(self, label: str, part: pa.Table) -> None:
        if label not in self.open:
            folder = f"{self.staging}/day={label}"
            self.fs.makedirs(folder, exist_ok=True)
            handle = self.fs.open(f"{folder}/part-{self.run}.parquet", "wb")
            self.open[label] = (handle, pq.ParquetWriter(handle, self.schema, compression="zstd"))
        self.open[label][1].write_table(part.cast(self.schema))

    def close(self) -> None:
        """Finish every file (their footers written): the export succeeded."""
        for handle, writer in self.open.values():
            writer.close()
            handle.close()
        self.open.clear()

    def abandon(self) -> None:
        """Close what is still open after a failure; the staging folder is removed next."""
        for handle, writer in self.open.values():
            try:
                writer.close()
                handle.close()
            except Exception:  # already failing: the staging folder is removed below
                pass
        self.open.clear()
