"""The functions Spark runs on its executors, over RDD partitions (``mapPartitions``), not
``mapInArrow`` or ``mapInPandas``: those need pandas on every node, and with pandas
installed DuckDB imports it in every tastebud process (half a second of CLI start-up).
Each is a picklable class; the job's own function inside it must be importable there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from tastebud.schemas import EVENT_SCHEMA

#: The event columns as Spark hands them to an ``EntityMapper`` (the time as microseconds
#: since the epoch: a Row's datetime would be naive, in the executor's local time zone).
TIMESTAMP_MICROS = "timestamp_us"


class IdMapper:
    """Rows of ids in, as Arrow batches of at most ``BATCH`` ids, to the job's function with
    its broadcast value; its rows out as dicts."""

    BATCH = 10_000

    def __init__(self, func: Callable[..., Iterator[pa.RecordBatch]], broadcast: Any) -> None:
        self.func = func
        self.broadcast = broadcast

    def __call__(self, rows: Iterator[Any]) -> Iterator[dict[str, Any]]:
        def batches() -> Iterator[pa.RecordBatch]:
            chunk: list[str] = []
            for row in rows:
                chunk.append(row[0])
                if len(chunk) >= self.BATCH:
                    yield pa.RecordBatch.from_pydict({"id": chunk})
                    chunk = []
            if chunk:
                yield pa.RecordBatch.from_pydict({"id": chunk})

        for out in self.func(batches(), self.broadcast.value):
            yield from out.to_pylist()


class EntityMapper:
    """A partition's events (every event of each of its entities) in, as one Arrow table in
    ``EVENT_SCHEMA``, to the function; its output out as Arrow IPC bytes (exact types, no
    per-row conversion on the way back). An empty partition calls nothing."""

    def __init__(self, func: Callable[[pa.Table], pa.Table | None]) -> None:
        self.func = func

    def __call__(self, rows: Iterator[Any]) -> Iterator[bytes]:
        events = events_table(list(rows))
        if events.num_rows == 0:
            return
        out = self.func(events)
        if out is None or out.num_rows == 0:
            return
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, out.schema) as writer:
            writer.write_table(out)
        yield sink.getvalue().to_pybytes()


def events_table(rows: list[Any]) -> pa.Table:
    """Spark rows (``EVENT_SCHEMA``'s columns, the time as ``TIMESTAMP_MICROS``) as Arrow."""
    arrays = []
    for index, field in enumerate(EVENT_SCHEMA):
        values = [row[index] for row in rows]
        if field.name == "timestamp":
            arrays.append(pa.array(values, pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def read_outputs(blobs: list[bytes]) -> pa.Table | None:
    """The partitions' outputs (Arrow IPC streams) as one table; None when there are none."""
    tables = [pa.ipc.open_stream(blob).read_all() for blob in blobs]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")
