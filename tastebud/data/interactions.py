"""Interaction logs: the rows a model learns from, read from the EventStore or a file.

An interaction log is an Arrow table with the columns of ``LOG_SCHEMA``. The event store
already holds validated events; a file (the batch CLI's ``--interactions``) is checked here:
rows without ids, with NaN or infinite weights or unreadable timestamps are dropped and
counted (an empty timestamp is no time, kept), and unknown columns are ignored and named, so
a messy export still trains.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tastebud.schemas import parse_timestamp
from tastebud.stores.base import EventQuery, EventStore

TIMESTAMP = pa.timestamp("us", tz="UTC")
LOG_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("weight", pa.float64()),
        pa.field("timestamp", TIMESTAMP),
    ]
)
FILE_COLUMNS = ("user_id", "item_id", "rating", "weight", "event_type", "timestamp")


class InteractionsError(ValueError):
    """The interactions cannot be used at all (missing file, no id columns, nothing left)."""


@dataclass
class InteractionLog:
    """Validated interaction rows plus where they came from and what was dropped."""

    table: pa.Table
    snapshot: str
    dropped: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def time_range(self) -> tuple[str | None, str | None]:
        column = self.table.column("timestamp")
        if column.null_count == len(column):
            return None, None
        low, high = pc.min(column).as_py(), pc.max(column).as_py()
        return low.isoformat(), high.isoformat()

    def slice_rows(self, mask: np.ndarray, snapshot_suffix: str) -> InteractionLog:
        """A sub-log (e.g. a split's train part) with its own snapshot id."""
        return InteractionLog(
            self.table.filter(pa.array(mask)),
            hashlib.sha256(f"{self.snapshot}:{snapshot_suffix}".encode()).hexdigest()[:16],
        )


def from_table(table: pa.Table, snapshot: str | None = None) -> InteractionLog:
    """A log from any table with ``user_id``/``item_id`` and the optional columns."""
    return _normalise(table, snapshot or _table_digest(table), source="table")


def read_interactions_file(path: str | Path) -> InteractionLog:
    """Read ``user_id,item_id[,rating,weight,event_type,timestamp]`` from CSV or Parquet."""
    path = Path(path)
    if not path.is_file():
        raise InteractionsError(f"interactions file {path} does not exist")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    malformed: list[pacsv.InvalidRow] = []

    def skip(row: pacsv.InvalidRow) -> str:
        """A row with the wrong number of fields: dropped and counted, the rest still read."""
        malformed.append(row)
        return "skip"

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pq.read_table(path)
        else:
            delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
            table = pacsv.read_csv(
                path,
                parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=skip),
                convert_options=pacsv.ConvertOptions(
                    column_types={"user_id": pa.string(), "item_id": pa.string()},
                    strings_can_be_null=True,
                    # Only an empty field is missing: "nan" in a weight column is a NaN
                    # (rejected, counted), "NA" is a valid id.
                    null_values=[""],
                    check_utf8=False,  # checked per row below, not for the whole file
                ),
            )
    except (pa.ArrowInvalid, OSError) as error:
        raise InteractionsError(f"cannot read {path}: {error}") from None
    table, not_utf8 = _without_invalid_utf8(table)
    log = _normalise(table, digest.hexdigest()[:16], source=str(path))
    unread = {"malformed_row": len(malformed), "invalid_utf8": not_utf8}
    log.dropped = {**{k: n for k, n in unread.items() if n}, **log.dropped}
    return log


def _without_invalid_utf8(table: pa.Table) -> tuple[pa.Table, int]:
    """The table without the rows whose text is not UTF-8 (read unchecked, so one bad byte
    costs its row, not the file), and how many there were."""
    bad = np.zeros(table.num_rows, dtype=bool)
    for column in table.columns:
        if not pa.types.is_string(column.type):
            continue
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        for row, value in enumerate(column.cast(pa.binary()).to_pylist()):
            try:
                if value is not None:
                    value.decode("utf-8")
            except UnicodeDecodeError:
                bad[row] = True
    if not bad.any():
        return table, 0
    return table.filter(pa.array(~bad)), int(bad.sum())


def read_event_store(
    events: EventStore, query: EventQuery | None = None, batch_size: int = 1_000_000
) -> InteractionLog:
    """Every event matching ``query``; the snapshot names the store position it saw."""
    last_seq = events.last_seq()
    query = query or EventQuery()
    columns = ["user_id", "item_id", "event_type", "value", "timestamp"]
    batches = [batch.select(columns) for batch in events.iter_batches(query, batch_size=batch_size)]
    if batches:
        table = pa.Table.from_batches(batches)
    else:
        table = pa.table({name: pa.array([], LOG_SCHEMA.field(name).type) for name in columns})
    snapshot = hashlib.sha256(f"events:{last_seq}:{table.num_rows}:{query!r}".encode()).hexdigest()[
        :16
    ]
    return _normalise(table, snapshot, source="event store")


def _table_digest(table: pa.Table) -> str:
    digest = hashlib.sha256()
    for name in sorted(table.column_names):
        digest.update(name.encode())
        for chunk in table.column(name).chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(buffer)
    return digest.hexdigest()[:16]


def _timestamps(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO strings, epoch seconds or Arrow timestamps, all as UTC microseconds."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            column = pc.assume_timezone(column, "UTC")
        return column.cast(TIMESTAMP)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        seconds = column.cast(pa.float64())
        micros = pc.multiply(seconds, 1_000_000.0)
        valid = pc.and_(pc.is_finite(micros), pc.less(pc.abs(micros), 9.2e18))
        micros = pc.if_else(valid, micros, None)
        return pc.cast(pc.round(micros), pa.int64()).cast(TIMESTAMP)
    text = column.cast(pa.string())
    parsed = []
    for chunk in text.chunks:
        values = []
        for raw in chunk.to_pylist():
            values.append(_parse_text_time(raw))
        parsed.append(pa.array(values, TIMESTAMP))
    return pa.chunked_array(parsed, TIMESTAMP)


def _parse_text_time(raw: str | None) -> object:
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        return parse_timestamp(
            float(text) if text.lstrip("-").replace(".", "", 1).isdigit() else text
        )
    except (ValueError, TypeError, OverflowError):
        return None


def _numbers(column: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return column.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = []
        for raw in column.to_pylist():
            try:
                values.append(float(raw) if raw is not None and str(raw).strip() else None)
            except ValueError:
                values.append(float("nan"))
        return pa.chunked_array([pa.array(values, pa.float64())])


def _separator_hint(columns: list[str]) -> str:
    """For a header read as one column that holds another separator (a ';' export)."""
    for separator in (";", "|", "\t", ","):
        if len(columns) == 1 and separator in columns[0]:
            return f"; its header holds {separator!r}: .csv is split on commas, .tsv on tabs"
    return ""


def _normalise(table: pa.Table, snapshot: str, *, source: str) -> InteractionLog:
    names = set(table.column_names)
    if "value" in names and "rating" not in names:
        table = table.rename_columns(["rating" if n == "value" else n for n in table.column_names])
        names = set(table.column_names)
    missing = [name for name in ("user_id", "item_id") if name not in names]
    if missing:
        columns = table.column_names
        raise InteractionsError(
            f"{source} has no {' and no '.join(missing)} column; columns found: "
            f"{', '.join(columns) or 'none'}; expected {', '.join(FILE_COLUMNS)}"
            f"{_separator_hint(columns)}"
        )
    ignored = sorted(names - set(FILE_COLUMNS))
    rows = table.num_rows
    columns = _typed_columns(table, names)
    good, dropped = _usable_rows(table, names, columns)
    rating, weight = columns["rating"], columns["weight"]
    log = pa.table(
        {
            "user_id": columns["user_id"],
            "item_id": columns["item_id"],
            "event_type": columns["event_type"],
            "value": rating if rating is not None else pa.nulls(rows, pa.float64()),
            "weight": weight if weight is not None else pa.nulls(rows, pa.float64()),
            "timestamp": columns["timestamp"],
        }
    ).filter(pa.array(good))
    log = log.cast(LOG_SCHEMA)
    return InteractionLog(log, snapshot, dropped, ignored)


def _typed_columns(table: pa.Table, names: set[str]) -> dict[str, Any]:
    """The log's columns in their types; ``rating`` and ``weight`` None when absent. Without
    an event type a row is a rating when it has one, else a view."""
    rows = table.num_rows
    rating = _numbers(table.column("rating")) if "rating" in names else None
    weight = _numbers(table.column("weight")) if "weight" in names else None
    if "event_type" in names:
        event_type = table.column("event_type").cast(pa.string())
    else:
        event_type = pa.chunked_array(
            [pa.array(["rating" if rating is not None else "view"] * rows, pa.string())]
        )
    if rating is not None and "event_type" in names:
        event_type = pc.if_else(
            pc.and_(pc.is_null(event_type), pc.is_valid(rating)), "rating", event_type
        )
    if "timestamp" in names:
        timestamp = _timestamps(table.column("timestamp"))
    else:
        timestamp = pa.chunked_array([pa.nulls(rows, TIMESTAMP)])
    return {
        "user_id": table.column("user_id").cast(pa.string()),
        "item_id": table.column("item_id").cast(pa.string()),
        "rating": rating,
        "weight": weight,
        "event_type": event_type,
        "timestamp": timestamp,
    }


def _usable_rows(
    table: pa.Table, names: set[str], columns: dict[str, Any]
) -> tuple[np.ndarray, dict[str, int]]:
    """Which rows a model can learn from, and how many were dropped for each reason."""
    user, item, event_type = columns["user_id"], columns["item_id"], columns["event_type"]
    rating, weight = columns["rating"], columns["weight"]
    dropped: dict[str, int] = {}
    good = np.ones(table.num_rows, dtype=bool)

    def require(mask: pa.ChunkedArray | pa.Array, reason: str) -> None:
        """Drop rows failing ``mask``; each row is counted once, under its first reason."""
        nonlocal good
        passes = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), bool)
        failed = int((good & ~passes).sum())
        if failed:
            dropped[reason] = failed
        good &= passes

    require(pc.and_(pc.is_valid(user), pc.greater(pc.utf8_length(user), 0)), "missing_user_id")
    require(pc.and_(pc.is_valid(item), pc.greater(pc.utf8_length(item), 0)), "missing_item_id")
    require(pc.is_valid(event_type), "missing_event_type")
    if weight is not None:
        require(pc.or_kleene(pc.is_null(weight), pc.is_finite(weight)), "weight_not_finite")
    if rating is not None:
        require(pc.or_kleene(pc.is_null(rating), pc.is_finite(rating)), "rating_not_finite")
    if "timestamp" in names:
        # An empty cell is a row without a time (kept: models train without one); only a
        # value that was given and cannot be read is dropped.
        raw = table.column("timestamp")
        given = pc.is_valid(raw)
        if pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type):
            given = pc.and_kleene(
                given, pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(raw)), 0)
            )
        require(pc.or_(pc.invert(given), pc.is_valid(columns["timestamp"])), "timestamp_invalid")
    return good, dropped
