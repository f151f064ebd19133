"""Where the metrics read events and exposures from: one small boundary, so the embedded
store, a PostgreSQL export and the exposure log all feed the same analysis.

A source is Parquet (a file, a glob, a folder searched recursively, or a list of them: what
``tastebud export events`` and the embedded exposure log write), an Arrow table, an Arrow
stream (``RecordBatchReader``: the event store's batches, read once), a DuckDB relation, or
a callable ``(since, until) -> source`` that reads just the period the analysis needs (an
exposure log's ``scan``, ``events_reader`` over an event store).
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.experiments.exposure_compaction import visible_files
from tastebud.schemas import EVENT_SCHEMA
from tastebud.stores import EventQuery, EventStore

BATCH_ROWS = 500_000
T = TypeVar("T")
PathLike = str | Path
Source = Any  # PathLike | Sequence[PathLike] | pa.Table | pa.RecordBatchReader | relation
SourceFactory = Callable[[datetime, datetime], Source]


# What DuckDB raises for a source it cannot read (a missing column, a bad file, bad JSON).
READ_ERRORS: tuple[type[Exception], ...] = (
    duckdb.BinderException,
    duckdb.IOException,
    duckdb.InvalidInputException,
    duckdb.ConversionException,
)


class SourceError(ValueError):
    """A source the metrics cannot read: the caller's mistake, named before any work."""


def resolve(source: Source | SourceFactory, since: datetime, until: datetime) -> Source:
    """The source itself, or what a factory returns for [since, until)."""
    if callable(source) and not _is_relation(source):
        return source(since, until)
    return source


def events_reader(
    store: EventStore,
    since: datetime,
    until: datetime,
    event_types: Sequence[str] | None = None,
    batch_size: int = BATCH_ROWS,
) -> pa.RecordBatchReader:
    """The store's events in [since, until) as one Arrow stream (bounded memory; read once).
    Works for every ``EventStore`` backend: the embedded store's segments and tail, or
    PostgreSQL."""
    query = EventQuery(start=since, end=until, event_types=event_types)
    batches = store.iter_batches(query, batch_size=batch_size)
    return pa.RecordBatchReader.from_batches(EVENT_SCHEMA, batches)


def parquet_files(source: Source) -> list[str] | None:
    """The Parquet files a path-like source names (sorted), or None when it is no path.
    Hidden files and folders (``_tmp-*``, ``.x``: an export in progress) are skipped, and a
    folder or glob reaching into a compacted exposure log keeps the files its manifest
    makes visible (``exposure_compaction.visible_files``: each row once)."""
    if isinstance(source, str | Path):
        paths: Sequence[Any] = [source]
    elif (
        isinstance(source, Sequence)
        and source
        and all(isinstance(item, str | Path) for item in source)
    ):
        paths = source
    else:
        return None
    files: list[str] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found = (
                p
                for p in path.rglob("*.parquet")
                if not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts)
            )
            files.extend(visible_files(str(p) for p in found))
        elif any(char in str(entry) for char in "*?["):
            files.extend(visible_files(glob.glob(str(entry), recursive=True)))
        elif path.is_file():
            files.append(str(path))
        else:
            raise SourceError(f"no Parquet file or folder at {entry}")
    return sorted(set(files))


def connect(spill: str, memory_mb: int | None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for reading these sources: UTC, spilling to ``spill``, within
    ``memory_mb`` (None: DuckDB's default). The metrics and the monitor's online check both
    open theirs here."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute(f"SET temp_directory = '{spill}'")
    if memory_mb is not None:
        connection.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
    return connection


def register(
    connection: duckdb.DuckDBPyConnection,
    name: str,
    source: Source,
    *,
    schema: pa.Schema,
    once: bool,
) -> str:
    """A FROM expression for ``source`` on ``connection``. ``once``: the caller reads it in
    one scan, so a stream stays a stream; otherwise a stream is read into a table first."""
    files = parquet_files(source)
    if files is not None:
        if not files:
            connection.register(name, schema.empty_table())
            return name
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false)"
    if _is_relation(source):
        source = source.to_arrow_reader(BATCH_ROWS)
    if isinstance(source, pa.RecordBatchReader) and not once:
        source = source.read_all()
    if isinstance(source, pa.Table | pa.RecordBatchReader):
        connection.register(name, source)
        return name
    raise SourceError(
        f"cannot read {name} from a {type(source).__name__}: give Parquet paths, an Arrow "
        "table or stream, a DuckDB relation, or a callable (since, until) returning one"
    )


def chunks(source: Source, columns: list[str], dictionary: str) -> Iterator[pa.Table]:
    """The source's rows in bounded chunks (a Parquet row group, or ``BATCH_ROWS``), with
    ``dictionary`` (a list-of-strings column) dictionary-encoded where Parquet allows: the
    strings are then decoded once per row group, not once per row."""
    files = parquet_files(source)
    if files is not None:
        for file in files:
            handle = pq.ParquetFile(file, read_dictionary=[f"{dictionary}.list.element"])
            _has(handle.schema_arrow, columns, file)
            for group in range(handle.num_row_groups):
                yield handle.read_row_group(group, columns=columns)
        return
    if _is_relation(source):
        source = source.to_arrow_table()
    if isinstance(source, pa.RecordBatchReader):
        source = source.read_all()
    if not isinstance(source, pa.Table):
        raise SourceError(f"cannot read exposures from a {type(source).__name__}")
    _has(source.schema, columns, "the table")
    for batch in source.select(columns).to_batches(max_chunksize=BATCH_ROWS):
        yield pa.Table.from_batches([batch])


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, with the next one produced in a thread while the caller works on this one:
    Parquet decoding releases the GIL, so reading overlaps the numpy work on two cores."""
    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, items, done)
        while (item := pending.result()) is not done:
            pending = pool.submit(next, items, done)
            yield item  # type: ignore[misc]


def _has(schema: pa.Schema, columns: list[str], where: str) -> None:
    missing = sorted(set(columns) - set(schema.names))
    if missing:
        raise SourceError(f"exposures lack {missing} in {where}")


def _is_relation(source: Any) -> bool:
    return type(source).__name__ == "DuckDBPyRelation"
