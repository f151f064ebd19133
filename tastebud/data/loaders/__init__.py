"""Loaders turn files into ``Source``s: batches of raw rows for events, items or users.

``open_sources(path)`` recognises a dataset folder (MovieLens 100K / 1M / latest-small, 20M,
25M; Last.fm HetRec 2K; a tastebud folder with events.parquet) or reads one file of events,
items or users (CSV, TSV, JSON Lines, Parquet) with a column mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tastebud.data.formats import KINDS as KINDS
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
from tastebud.data.loaders.files import RawBatch, count_lines, detect_format, read_file


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


def open_sources(
    path: Path,
    *,
    kind: Kind | None = None,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    event_type: str = "view",
    default_timestamp: datetime | None = None,
) -> list[Source]:
    """The sources in a dataset folder (catalog first) or in one file."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        if kind is not None or mapping:
            raise MappingError("--kind and --map apply to a single file, not a dataset folder")
        from tastebud.data.loaders.datasets import dataset_sources

        return dataset_sources(path)
    kind = kind or "events"
    fmt = fmt or detect_format(path)
    if kind == "events":
        return [
            file_events(
                path, fmt, mapping or {}, event_type=event_type, default_timestamp=default_timestamp
            )
        ]
    return [file_catalog(path, fmt, kind, mapping or {})]


SAMPLE_ROWS = 1_000


def _columns(path: Path, fmt: str) -> list[str]:
    """Column names (for JSON Lines: the keys of the first rows)."""
    if fmt == "parquet":
        return list(pq.read_schema(path).names)
    for batch in read_file(path, fmt, batch_size=SAMPLE_ROWS):
        return batch.table.column_names
    return []


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
            f"{path.name} has no {' or '.join(missing)} column (columns: {columns});"
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
        raise MappingError(
            f"{path.name} has no {key} column (columns: {columns}); name one with --map {key}=..."
        )

    def to_record(row: dict[str, Any]) -> dict[str, Any]:
        return catalog_row(row, resolve_columns(list(row), aliases, overrides, strict=False))

    return Source(
        kind,
        path,
        lambda batch_size: read_file(path, fmt, batch_size=batch_size, multiline=True),
        _row_total(path, fmt),
        to_record=to_record,
    )
