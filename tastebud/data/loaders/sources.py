"""A ``Source``: one stream of raw rows of one kind (events, items or users), read lazily in
batches, and the sources of a single file with a column mapping. ``datasets`` builds a
known dataset folder's sources from these."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tastebud.data.formats import Kind
from tastebud.data.loaders.columns import (
    EVENT_ALIASES,
    ITEM_ALIASES,
    USER_ALIASES,
    MappingError,
    catalog_row,
    map_events,
    resolve_columns,
)
from tastebud.data.loaders.files import RawBatch, count_lines, read_file


@dataclass
class Source:
    """One stream of rows of one kind, read lazily in batches."""

    kind: Kind
    path: Path
    read: Callable[[int], Iterator[RawBatch]]  # batch_size -> batches
    total_rows: int | None = None  # for progress bars; None when unknown
    notes: list[str] = field(default_factory=list)
    # Items and users: a raw row to the fields of Item / User (may raise ValueError,
    # which rejects the row). Events are mapped column-wise inside ``read``.
    to_record: Callable[[dict[str, Any]], dict[str, Any]] = dict


SAMPLE_ROWS = 1_000


def _columns(path: Path, fmt: str) -> list[str]:
    """Column names (for JSON Lines: the keys of the first rows); a file with none is
    refused as empty, not as one missing its id columns."""
    if fmt == "parquet":
        return list(pq.read_schema(path).names)
    first: list[str] = []
    for batch in read_file(path, fmt, batch_size=SAMPLE_ROWS):
        if batch.table.column_names:
            return batch.table.column_names
        first = first or [f" (line {r.row}: {r.message})" for r in batch.rejections[:1]]
    if fmt == "jsonl":
        raise MappingError(
            f"{path.name} has no JSON object it can read on any line{''.join(first)}"
        )
    raise MappingError(f"{path.name} is empty: not even a header row")


def _missing(path: Path, fmt: str, names: str, columns: list[str]) -> str:
    """Why the id columns were not found, with a hint when the header is one column that
    holds another separator (a ';'-separated export read as CSV)."""
    message = f"{path.name} has no {names} column (columns: {columns})"
    if len(columns) != 1 or fmt not in ("csv", "tsv"):
        return message
    if fmt == "csv" and "\t" in columns[0]:
        return message + "; its header holds tabs: pass --format tsv"
    if fmt == "tsv" and "," in columns[0]:
        return message + "; its header holds commas: pass --format csv"
    for separator in (";", "|"):
        if separator in columns[0]:
            splits = "commas" if fmt == "csv" else "tabs"
            return message + (
                f"; its header holds {separator!r}, but {fmt} is split on {splits}:"
                " convert the file to CSV or TSV"
            )
    return message


def _row_total(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return count_lines(path) - (1 if fmt in ("csv", "tsv") else 0)  # minus the header


def file_events(
    path: Path,
    fmt: str,
    overrides: Mapping[str, str],
    *,
    event_type: str,
    default_timestamp: datetime | None,
) -> Source:
    """Events (or plain interactions) from one file."""
    columns = _columns(path, fmt)
    resolved = resolve_columns(columns, EVENT_ALIASES, overrides)
    missing = [name for name in ("user_id", "item_id") if name not in resolved]
    if missing:
        raise MappingError(
            f"{_missing(path, fmt, ' or '.join(missing), columns)};"
            " name one with --map, e.g. --map user_id=customer"
        )
    notes = []
    if "timestamp" not in resolved and default_timestamp is None:
        default_timestamp = datetime.fromtimestamp(int(path.stat().st_mtime), tz=UTC)
        notes.append(
            f"no timestamp column: every event is dated {default_timestamp.isoformat()}"
            " (the file's modification time; --default-timestamp sets another)"
        )

    def read(batch_size: int) -> Iterator[RawBatch]:
        for batch in read_file(path, fmt, batch_size=batch_size):
            columns = batch.table.column_names
            table = map_events(
                batch.table,
                resolve_columns(columns, EVENT_ALIASES, overrides, strict=False),
                default_event_type=event_type,
                default_timestamp=default_timestamp,
            )
            yield RawBatch(table, batch.row_numbers, batch.rejections)

    return Source("events", path, read, _row_total(path, fmt), notes)


def file_catalog(path: Path, fmt: str, kind: Kind, overrides: Mapping[str, str]) -> Source:
    """Items or users from one file; unmapped columns land in ``attributes``."""
    aliases = ITEM_ALIASES if kind == "items" else USER_ALIASES
    key = "item_id" if kind == "items" else "user_id"
    columns = _columns(path, fmt)
    resolved = resolve_columns(columns, aliases, overrides)
    if key not in resolved:
        raise MappingError(f"{_missing(path, fmt, key, columns)}; name one with --map {key}=...")

    def to_record(row: dict[str, Any]) -> dict[str, Any]:
        return catalog_row(row, resolve_columns(list(row), aliases, overrides, strict=False))

    return Source(
        kind,
        path,
        lambda batch_size: read_file(path, fmt, batch_size=batch_size, multiline=True),
        _row_total(path, fmt),
        to_record=to_record,
    )
