"""The store interfaces. Backends live beside this file; nothing outside ``stores`` imports one.

Each interface is small on purpose: a backend implements a handful of abstract methods and
inherits the conveniences built on them. One contract suite per interface
(``tests/stores/``) runs against every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from tastebud.schemas import (
    Event,
    Item,
    User,
    events_from_arrow,
    events_to_arrow,
)
from tastebud.stores.errors import Closeable
from tastebud.stores.errors import StoreError as StoreError  # re-exported: backends import it here
from tastebud.stores.errors import StoreUnavailable as StoreUnavailable

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where a table is made, not here: the interfaces are imported by every
# command, and light ones (``tastebud stats``) answer in under 0.5 s without Arrow's compute
# and Parquet modules (docs/benchmarks.md, CLI start-up).


@dataclass(frozen=True)
class EventQuery:
    """Which events to read. Time bounds are [start, end); all filters combine with AND."""

    start: datetime | None = None
    end: datetime | None = None
    user_ids: Sequence[str] | None = None
    item_ids: Sequence[str] | None = None
    event_types: Sequence[str] | None = None
    after_seq: int | None = None
    order: Literal["asc", "desc"] = "asc"
    limit: int | None = None

    def clauses(
        self,
        marker: str,
        in_list: Callable[[str], str],
        list_value: Callable[[list[str]], object] = list,
        time_value: Callable[[datetime], object] = lambda moment: moment,
    ) -> tuple[list[str], list[object]]:
        """SQL conditions and parameters for this query in a backend's dialect: ``marker`` is
        its parameter placeholder, ``in_list(column)`` its "column is in a list" test."""
        clauses: list[str] = []
        params: list[object] = []
        for condition, value in (
            (f'"timestamp" >= {marker}', self.start),
            (f'"timestamp" < {marker}', self.end),
        ):
            if value is not None:
                clauses.append(condition)
                params.append(time_value(value))
        if self.after_seq is not None:
            clauses.append(f"seq > {marker}")
            params.append(self.after_seq)
        for column, values in (
            ("user_id", self.user_ids),
            ("item_id", self.item_ids),
            ("event_type", self.event_types),
        ):
            if values is not None:
                clauses.append(in_list(column))
                params.append(list_value(list(values)))
        return clauses, params

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must be >= 0")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")


@dataclass
class AppendResult:
    """What an append did: how many rows were new, and which event ids were already stored
    (or repeated within the batch) and so were not stored again."""

    inserted: int = 0
    duplicates: list[str] = field(default_factory=list)

    def __iadd__(self, other: AppendResult) -> Self:
        self.inserted += other.inserted
        self.duplicates.extend(other.duplicates)
        return self


@dataclass(frozen=True)
class EventStats:
    events: int
    users: int
    items: int
    by_type: dict[str, int]
    first: datetime | None
    last: datetime | None


def dedupe_batch(table: pa.Table) -> tuple[pa.Table, list[str]]:
    """Keep the first row of each event_id; return the repeats as duplicates."""
    ids = table.column("event_id").to_pylist()
    if len(set(ids)) == len(ids):
        return table, []
    first: dict[str, int] = {}
    repeats: list[str] = []
    for index, event_id in enumerate(ids):
        if event_id in first:
            repeats.append(event_id)
        else:
            first[event_id] = index
    import pyarrow as pa  # lazy: see the imports

    return table.take(pa.array(list(first.values()), pa.int64())), repeats


def conform_events(table: pa.Table) -> pa.Table:
    """Cast a table to EVENT_SCHEMA (column order, types); missing optional columns are null."""
    import pyarrow as pa  # lazy: see the imports
    import pyarrow.compute as pc

    from tastebud.schemas import EVENT_SCHEMA

    columns = []
    for schema_field in EVENT_SCHEMA:
        if schema_field.name in table.column_names:
            column = table.column(schema_field.name)
            if column.type != schema_field.type:
                column = pc.cast(column, schema_field.type)
        elif schema_field.nullable:
            column = pa.nulls(table.num_rows, schema_field.type)
        else:
            raise ValueError(f"events table lacks required column {schema_field.name!r}")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)


class EventStore(Closeable, ABC):
    """The append-only event log: idempotent on event_id, scannable, exportable for training."""

    @abstractmethod
    def append_arrow(self, table: pa.Table) -> AppendResult:
        """Store validated rows (EVENT_SCHEMA); returns once they are durable."""

    @abstractmethod
    def read_arrow(self, query: EventQuery | None = None, *, with_seq: bool = False) -> pa.Table:
        """Matching events ordered by (timestamp, seq); ``with_seq`` adds the log position."""

    @abstractmethod
    def iter_batches(
        self, query: EventQuery | None = None, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """Matching events in bounded-memory batches, ordered by seq (for export)."""

    @abstractmethod
    def count(self, query: EventQuery | None = None) -> int: ...

    @abstractmethod
    def stats(self) -> EventStats: ...

    @abstractmethod
    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these event ids are stored."""

    @abstractmethod
    def last_seq(self) -> int:
        """The log position of the newest stored event (0 when empty)."""

    # Conveniences on top of the abstract methods.

    def append(self, events: Sequence[Event]) -> AppendResult:
        if not events:
            return AppendResult()
        return self.append_arrow(events_to_arrow(events))

    def scan(self, query: EventQuery | None = None) -> list[Event]:
        return events_from_arrow(self.read_arrow(query))

    def export_parquet(self, path: str | Path, query: EventQuery | None = None) -> int:
        """Write matching events to one Parquet file, streaming; returns the row count."""
        import pyarrow.parquet as pq  # lazy: see the imports

        from tastebud.schemas import EVENT_SCHEMA

        rows = 0
        with pq.ParquetWriter(str(path), EVENT_SCHEMA, compression="zstd") as writer:
            for batch in self.iter_batches(query):
                writer.write_batch(batch)
                rows += batch.num_rows
        return rows


CATALOG_CHANGE_OVERLAP_SECONDS = 300.0


class CatalogStore(Closeable, ABC):
    """Items and users, upserted incrementally (one upsert touches only its rows)."""

    #: How far before the watermark ``items_changed_since`` reads again: a row is stamped
    #: before it commits, so one committing after a read can carry an older stamp than that
    #: read's watermark. Writes slower than this to commit (or clocks further apart) are missed.
    change_overlap_seconds: float = CATALOG_CHANGE_OVERLAP_SECONDS

    @abstractmethod
    def upsert_items(self, items: Sequence[Item]) -> int: ...

    @abstractmethod
    def items_changed_since(
        self, since: float | None, *, page: int = 10_000
    ) -> tuple[list[Item], float]:
        """Items upserted at or after ``since - change_overlap_seconds`` (every item when
        ``since`` is None), ordered by item_id, and the watermark to pass next time.

        Rows in the overlap come back on every call that covers them: the caller de-duplicates.
        The overlap is needed because ``updated_at`` is stamped before the commit (PostgreSQL's
        ``now()`` is the transaction's start; the embedded store uses the writer's clock before
        it waits for the write lock). The watermark is the store's clock when the read began
        (epoch seconds), not the newest ``updated_at`` seen: a row the read missed commits
        after it, so it carries a stamp later than watermark - overlap; and after a bulk load
        a watermark at the newest row would keep the whole load inside the overlap."""

    @abstractmethod
    def upsert_users(self, users: Sequence[User]) -> int: ...

    @abstractmethod
    def get_items(self, item_ids: Sequence[str]) -> dict[str, Item]: ...

    @abstractmethod
    def get_users(self, user_ids: Sequence[str]) -> dict[str, User]: ...

    @abstractmethod
    def list_items(
        self,
        *,
        active: bool | None = None,
        category: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Item]:
        """Items ordered by item_id; pass the last id seen as ``after`` for the next page."""

    @abstractmethod
    def list_users(self, *, after: str | None = None, limit: int = 100) -> list[User]: ...

    @abstractmethod
    def count_items(self, *, active: bool | None = None) -> int: ...

    @abstractmethod
    def count_users(self) -> int: ...

    def get_item(self, item_id: str) -> Item | None:
        return self.get_items([item_id]).get(item_id)

    def get_user(self, user_id: str) -> User | None:
        return self.get_users([user_id]).get(user_id)

    def iter_items(self, *, active: bool | None = None, page: int = 10_000) -> Iterator[Item]:
        after: str | None = None
        while True:
            batch = self.list_items(active=active, after=after, limit=page)
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1].item_id

    def iter_users(self, *, page: int = 10_000) -> Iterator[User]:
        after: str | None = None
        while True:
            batch = self.list_users(after=after, limit=page)
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1].user_id


class OnlineStore(Closeable, ABC):
    """A shared key-value store with per-key TTL: the online half of the feature store and the
    home of serving state (recent items, precomputed lists). Values are bytes; callers encode.

    Besides plain values a key can hold a capped list (``push_lists``/``get_lists``), which
    several processes may append to at once. Plain values and lists share one key space: give
    a name to one kind only (Redis stores both under the same key, so mixing them fails there).
    ``delete_many`` deletes whatever a key holds, plain value or list.
    """

    #: Reads are in-process or from a local file, never a network round trip, so an event
    #: loop may wait on one (a read in a worker thread costs more, in GIL hand-offs, than the
    #: read itself). Network stores leave it False: a hung server must not stall the loop.
    local_reads: bool = False

    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    @abstractmethod
    def set_many(self, values: Mapping[str, bytes], ttl_seconds: float | None = None) -> None: ...

    @abstractmethod
    def delete_many(self, keys: Sequence[str]) -> int:
        """Delete keys, plain values and lists alike; returns how many existed."""

    @abstractmethod
    def push_lists(
        self, items: Mapping[str, Sequence[bytes]], keep: int, ttl_seconds: float | None = None
    ) -> None:
        """Append values to the end of each key's list, atomically per key, then keep only the
        newest ``keep`` values of each list; the list's TTL (if given) is reset on every push.

        Every push sets the list's expiry, like ``set_many``: ``ttl_seconds`` from now, or
        none when it is None. An expired list counts as missing, so a push starts it afresh.
        A key given no values is left untouched; an empty mapping is a no-op. Raises
        ValueError when ``keep`` < 1 or ``ttl_seconds`` <= 0."""

    @abstractmethod
    def get_lists(self, keys: Sequence[str]) -> list[list[bytes]]:
        """Each key's list, oldest first; [] for a missing or expired key."""

    def get(self, key: str) -> bytes | None:
        return self.get_many([key])[0]

    def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        self.set_many({key: value}, ttl_seconds)

    def push_list(
        self, key: str, values: Sequence[bytes], keep: int, ttl_seconds: float | None = None
    ) -> None:
        self.push_lists({key: values}, keep, ttl_seconds)

    def get_list(self, key: str) -> list[bytes]:
        return self.get_lists([key])[0]
