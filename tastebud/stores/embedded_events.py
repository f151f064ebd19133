"""The embedded event log: SQLite (WAL) for durable, idempotent writes; Parquet segments read
through DuckDB for scans and analytics.

Layout under the store's folder::

    events.db            event_ids (the dedup index), tail (recent small appends),
                         segments (the registry of Parquet files), meta (counters),
                         summary_* (what ``stats`` reports, see ``event_summary``)
    segments/seg-N.parquet

Why this shape: SQLite gives multi-process writes with one writer at a time and readers that
never block, and survives kill -9; but secondary indexes on user and item cut SQLite's bulk
insert rate below 100k rows/s (measured, docs/benchmarks.md). So SQLite keeps only what must
be transactional (the event-id index and a small tail), and everything else is columnar:

* a large append (>= ``segment_rows``) is written straight to a new Parquet segment, fsynced,
  and registered in the same SQLite transaction that records its event ids;
* small appends (the API's) go to the tail table, which is compacted into a segment once it
  holds ``compact_rows`` rows;
* a reader takes the segment list and the matching tail rows in one SQLite read snapshot, then
  lets DuckDB scan both. Segments are immutable; a merged-away segment's file is deleted only
  after ``retired_grace_seconds`` so readers holding the old list still find it.

Every event gets a ``seq``, allocated under the write lock, so seq order is commit order: a
consumer can read "everything after seq N" without missing late commits.

Over 400 lines because the write path (ids, tail, segments), compaction and the read
snapshot share one lock and one SQLite layout: split apart, each half would need the
other's invariants restated.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tastebud.stores import event_summary
from tastebud.stores.base import (
    AppendResult,
    EventQuery,
    EventStats,
    EventStore,
    conform_events,
    dedupe_batch,
)
from tastebud.stores.local_files import exclusive_lock, fsync_dir
from tastebud.stores.sqlite import SqliteDatabase, chunks, placeholders

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

# DuckDB and pyarrow (with numpy) are imported where events are written or scanned: reading
# the stored summary (``tastebud stats``) needs neither, and they are a third of a second of
# start-up (docs/benchmarks.md, "Command-line start-up").

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('next_seq', 1), ('schema_version', 1);
CREATE TABLE IF NOT EXISTS event_ids (event_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tail (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    value REAL,
    timestamp INTEGER NOT NULL,
    session_id TEXT,
    device_type TEXT,
    locale TEXT,
    schema_version INTEGER NOT NULL,
    context TEXT,
    received_at INTEGER
);
CREATE TABLE IF NOT EXISTS segments (
    segment_id INTEGER PRIMARY KEY AUTOINCREMENT,
    file TEXT NOT NULL,
    rows INTEGER NOT NULL,
    min_seq INTEGER NOT NULL,
    max_seq INTEGER NOT NULL,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL,
    created_at REAL NOT NULL,
    retired_at REAL
);
"""

# EVENT_SCHEMA's names, spelled out so the module needs no pyarrow (a test checks they agree).
COLUMNS = ("event_id", "user_id", "item_id", "event_type", "value", "timestamp", "session_id",
           "device_type", "locale", "schema_version", "context", "received_at")  # fmt: skip
TIME_COLUMNS = ("timestamp", "received_at")
QUOTED = ", ".join(f'"{name}"' for name in COLUMNS)
TAIL_INSERT = f"INSERT INTO tail (seq, {QUOTED}) VALUES ({placeholders(len(COLUMNS) + 1)})"


@cache
def tail_schema() -> pa.Schema:
    """EVENT_SCHEMA with each event's log position (``seq``)."""
    import pyarrow as pa  # lazy: see the imports

    from tastebud.schemas import EVENT_SCHEMA

    return EVENT_SCHEMA.append(pa.field("seq", pa.int64(), nullable=False))


@dataclass(frozen=True)
class _Segment:
    file: str
    rows: int
    min_seq: int
    max_seq: int
    min_ts: int
    max_ts: int


@dataclass(frozen=True)
class _Snapshot:
    files: list[str]
    tail: pa.Table


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    """Exact epoch microseconds (float seconds would round)."""
    return (value - EPOCH) // timedelta(microseconds=1)


class EmbeddedEventStore(EventStore):
    def __init__(
        self,
        root: Path,
        *,
        segment_rows: int = 20_000,
        compact_rows: int = 50_000,
        max_small_segments: int = 16,
        retired_grace_seconds: float = 3600.0,
    ) -> None:
        self.root = root
        self.segment_dir = root / "segments"
        self.segment_dir.mkdir(parents=True, exist_ok=True)
        self.segment_rows = segment_rows
        self.compact_rows = compact_rows
        self.max_small_segments = max_small_segments
        self.retired_grace_seconds = retired_grace_seconds
        self._db = SqliteDatabase(root / "events.db", SCHEMA + event_summary.SUMMARY_SCHEMA)
        self._duck: duckdb.DuckDBPyConnection | None = None  # opened on the first scan
        self._duck_lock = threading.Lock()

    # --- writes ---------------------------------------------------------------------

    def append_arrow(self, table: pa.Table) -> AppendResult:
        if table.num_rows == 0:
            return AppendResult()
        import pyarrow as pa  # lazy: see the imports

        table, repeats = dedupe_batch(conform_events(table))
        ids = table.column("event_id").to_pylist()
        with self._db.write() as connection:
            table, stored_before = self._claim_ids(connection, table, ids)
            if table.num_rows:
                # Read before the seqs move on: a summary covering every earlier event
                # takes this batch in too, in the same transaction.
                summarised = event_summary.is_current(connection)
                first_seq = self._allocate_seq(connection, table.num_rows)
                last_seq = first_seq + table.num_rows - 1
                seqs = pa.array(range(first_seq, last_seq + 1), pa.int64())
                with_seq = table.append_column(tail_schema().field("seq"), seqs)
                if table.num_rows >= self.segment_rows:
                    self._write_segment(connection, with_seq)
                else:
                    connection.executemany(TAIL_INSERT, _rows(with_seq))
                if summarised:
                    event_summary.fold(connection, event_summary.batch_delta(table, last_seq))
        self._maybe_compact()
        return AppendResult(inserted=table.num_rows, duplicates=stored_before + repeats)

    def _claim_ids(
        self, connection: sqlite3.Connection, table: pa.Table, ids: list[str]
    ) -> tuple[pa.Table, list[str]]:
        """Insert the batch's ids into the dedup index; drop rows whose id was already there."""
        connection.execute("SAVEPOINT claim")
        before = connection.total_changes
        # Sorted keys insert into the B-tree far faster than random ones (measured ~2x).
        connection.executemany(
            "INSERT OR IGNORE INTO event_ids (event_id) VALUES (?)", ((i,) for i in sorted(ids))
        )
        if connection.total_changes - before == len(ids):
            connection.execute("RELEASE claim")
            return table, []
        # Some ids were stored before: find them, then claim only the new ones.
        connection.execute("ROLLBACK TO claim")
        existing = _existing(connection, ids)
        keep = [event_id not in existing for event_id in ids]
        connection.executemany(
            "INSERT INTO event_ids (event_id) VALUES (?)",
            ((i,) for i, new in zip(ids, keep, strict=True) if new),
        )
        connection.execute("RELEASE claim")
        duplicates = [i for i, new in zip(ids, keep, strict=True) if not new]
        import pyarrow as pa  # lazy: see the imports

        return table.filter(pa.array(keep, pa.bool_())), duplicates

    def _allocate_seq(self, connection: sqlite3.Connection, count: int) -> int:
        (first,) = connection.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        connection.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (first + count,))
        return int(first)

    def _write_segment(self, connection: sqlite3.Connection, table: pa.Table) -> None:
        """Write a Parquet segment and register it in the open transaction."""
        self._register(connection, self._write_segment_file(table))

    def _write_segment_file(self, table: pa.Table) -> _Segment:
        """Sort, write and fsync a segment file; it stays invisible until registered (and is
        deleted as an orphan after the grace period if it never is)."""
        table = table.sort_by([("timestamp", "ascending"), ("seq", "ascending")])
        timestamps = table.column("timestamp")
        seqs = table.column("seq")
        segment = _Segment(
            file=f"seg-{_min(seqs):012d}-{uuid.uuid4().hex[:12]}.parquet",
            rows=table.num_rows,
            min_seq=_min(seqs),
            max_seq=_max(seqs),
            min_ts=_micros(_min(timestamps)),
            max_ts=_micros(_max(timestamps)),
        )
        temporary = self.segment_dir / f".{segment.file}.tmp"
        with open(temporary, "wb") as handle:
            import pyarrow.parquet as pq  # lazy: see the imports

            pq.write_table(table, handle, compression="zstd", row_group_size=128 * 1024)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.segment_dir / segment.file)
        fsync_dir(self.segment_dir)
        return segment

    @staticmethod
    def _register(connection: sqlite3.Connection, segment: _Segment) -> None:
        connection.execute(
            "INSERT INTO segments (file, rows, min_seq, max_seq, min_ts, max_ts, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                segment.file,
                segment.rows,
                segment.min_seq,
                segment.max_seq,
                segment.min_ts,
                segment.max_ts,
                time.time(),
            ),
        )

    # --- compaction -------------------------------------------------------------------

    def _maybe_compact(self) -> None:
        connection = self._db.connection()
        (tail_rows,) = connection.execute("SELECT count(*) FROM tail").fetchone()
        (small,) = connection.execute(
            "SELECT count(*) FROM segments WHERE retired_at IS NULL AND rows < ?",
            (self.compact_rows,),
        ).fetchone()
        if tail_rows >= self.compact_rows or small > self.max_small_segments:
            self.compact()

    def compact(self) -> None:
        """Move the tail into a segment, merge small segments, delete long-retired files.

        The slow part (reading rows, writing Parquet: ~0.3 s for 50,000 rows) runs outside
        the write lock, so appends from other threads and processes go on meanwhile; a short
        write transaction then swaps the rows in, after checking that nobody moved them first.
        One process compacts at a time (a non-blocking file lock; the others skip)."""
        with exclusive_lock(self.root / "compact.lock") as acquired:
            if not acquired:
                return
            self._compact_tail()
            self._merge_small_segments()
            with self._db.write() as connection:
                self._delete_retired(connection)

    def _compact_tail(self) -> None:
        with self._db.read() as connection:
            tail = _tail_table(connection, "", [])
        if not tail.num_rows:
            return
        segment = self._write_segment_file(tail)
        with self._db.write() as connection:
            # Tail rows leave only by compaction and new ones get higher seqs, so an unchanged
            # count means exactly the rows written are still in the tail.
            (still,) = connection.execute(
                "SELECT count(*) FROM tail WHERE seq <= ?", (segment.max_seq,)
            ).fetchone()
            if still == tail.num_rows:
                self._register(connection, segment)
                connection.execute("DELETE FROM tail WHERE seq <= ?", (segment.max_seq,))
                return
        (self.segment_dir / segment.file).unlink(missing_ok=True)

    def _merge_small_segments(self) -> None:
        select = (
            "SELECT segment_id, file FROM segments WHERE retired_at IS NULL AND rows < ?"
            " ORDER BY segment_id"
        )
        with self._db.read() as connection:
            small = connection.execute(select, (self.compact_rows,)).fetchall()
        if len(small) <= self.max_small_segments:
            return
        import pyarrow.parquet as pq  # lazy: see the imports

        merged = pq.read_table([str(self.segment_dir / file) for _, file in small])
        segment = self._write_segment_file(merged)
        ids = [segment_id for segment_id, _ in small]
        with self._db.write() as connection:
            (live,) = connection.execute(
                f"SELECT count(*) FROM segments WHERE retired_at IS NULL"
                f" AND segment_id IN ({placeholders(len(ids))})",
                ids,
            ).fetchone()
            if live == len(ids):
                self._register(connection, segment)
                connection.executemany(
                    "UPDATE segments SET retired_at = ? WHERE segment_id = ?",
                    [(time.time(), segment_id) for segment_id in ids],
                )
                return
        (self.segment_dir / segment.file).unlink(missing_ok=True)

    def _delete_retired(self, connection: sqlite3.Connection) -> None:
        cutoff = time.time() - self.retired_grace_seconds
        for segment_id, file in connection.execute(
            "SELECT segment_id, file FROM segments WHERE retired_at < ?", (cutoff,)
        ).fetchall():
            (self.segment_dir / file).unlink(missing_ok=True)
            connection.execute("DELETE FROM segments WHERE segment_id = ?", (segment_id,))
        registered = {file for (file,) in connection.execute("SELECT file FROM segments")}
        for path in self.segment_dir.glob("*.parquet"):
            # A file no transaction registered: left by a crash mid-append.
            if path.name not in registered and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    # --- reads ------------------------------------------------------------------------

    def _snapshot(self, query: EventQuery) -> _Snapshot:
        where, params = _tail_filter(query)
        segment_sql = "SELECT file FROM segments WHERE retired_at IS NULL"
        segment_params: list[object] = []
        if query.start is not None:
            segment_sql += " AND max_ts >= ?"
            segment_params.append(_micros(query.start))
        if query.end is not None:
            segment_sql += " AND min_ts < ?"
            segment_params.append(_micros(query.end))
        if query.after_seq is not None:
            segment_sql += " AND max_seq > ?"
            segment_params.append(query.after_seq)
        with self._db.read() as connection:
            files = [
                str(self.segment_dir / file)
                for (file,) in connection.execute(segment_sql, segment_params)
            ]
            tail = _tail_table(connection, where, params)
        return _Snapshot(files, tail)

    def _relation(self, snapshot: _Snapshot, query: EventQuery) -> tuple[str, list[object]]:
        """SQL over the snapshot that DuckDB runs, with its parameters."""
        parts = ["SELECT * FROM tail_rows"]
        if snapshot.files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in snapshot.files)
            parts.insert(0, f"SELECT * FROM read_parquet([{listed}])")
        where, params = _duck_filter(query)
        return f"SELECT * FROM ({' UNION ALL BY NAME '.join(parts)}) {where}", params

    def _duck_cursor(self, tail: pa.Table) -> duckdb.DuckDBPyConnection:
        with self._duck_lock:
            if self._duck is None:
                import duckdb  # lazy: see the imports

                self._duck = duckdb.connect()
                self._duck.execute("SET TimeZone='UTC'")
            cursor = self._duck.cursor()
        cursor.register("tail_rows", tail)
        return cursor

    @contextmanager
    def _query(
        self, query: EventQuery, *, ordered: bool = False
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, str, list[object]]]:
        """A DuckDB cursor and the SQL (with parameters) selecting the query's events."""
        snapshot = self._snapshot(query)
        sql, params = self._relation(snapshot, query)
        if ordered:
            direction = "DESC" if query.order == "desc" else "ASC"
            sql += f' ORDER BY "timestamp" {direction}, seq {direction}'
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        cursor = self._duck_cursor(snapshot.tail)
        try:
            yield cursor, sql, params
        finally:
            cursor.close()

    def read_arrow(self, query: EventQuery | None = None, *, with_seq: bool = False) -> pa.Table:
        with self._query(query or EventQuery(), ordered=True) as (cursor, sql, params):
            table = cursor.sql(sql, params=params).to_arrow_table()
        return _to_schema(table, with_seq)

    def iter_batches(
        self, query: EventQuery | None = None, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        with self._query(query or EventQuery()) as (cursor, sql, params):
            import pyarrow as pa  # lazy: see the imports

            for batch in cursor.sql(sql, params=params).to_arrow_reader(batch_size):
                yield from _to_schema(pa.Table.from_batches([batch]), False).to_batches()

    def count(self, query: EventQuery | None = None) -> int:
        query = query or EventQuery()
        if query == EventQuery():
            with self._db.read() as connection:
                (segment_rows,) = connection.execute(
                    "SELECT coalesce(sum(rows), 0) FROM segments WHERE retired_at IS NULL"
                ).fetchone()
                (tail_rows,) = connection.execute("SELECT count(*) FROM tail").fetchone()
            return int(segment_rows + tail_rows)
        with self._query(query) as (cursor, sql, params):
            (total,) = cursor.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
        return int(total)

    def stats(self) -> EventStats:
        """From the stored summary (no scan); events it does not cover yet are folded in
        first (see ``event_summary``)."""
        with self._db.read() as connection:
            if event_summary.is_current(connection):
                return event_summary.read(connection)
            covered = event_summary.covered_seq(connection)
        delta = self._scan_delta(covered)
        with self._db.write() as connection:
            # Unless another process folded the same events meanwhile.
            if delta is not None and event_summary.covered_seq(connection) == covered:
                event_summary.fold(connection, delta)
            return event_summary.read(connection)

    def _scan_delta(self, covered: int) -> event_summary.Delta | None:
        """What the events after seq ``covered`` add to the summary, read with DuckDB."""
        with self._query(EventQuery(after_seq=covered)) as (cursor, sql, params):
            last_seq, first, last = cursor.execute(
                f'SELECT max(seq), epoch_us(min("timestamp")), epoch_us(max("timestamp"))'
                f" FROM ({sql})",
                params,
            ).fetchone()
            if last_seq is None:
                return None
            distinct = {
                column: [value for (value,) in cursor.execute(
                    f"SELECT DISTINCT {column} FROM ({sql})", params).fetchall()]
                for column in ("user_id", "item_id")
            }  # fmt: skip
            by_type = cursor.execute(
                f"SELECT event_type, count(*) FROM ({sql}) GROUP BY 1", params
            ).fetchall()
        return event_summary.Delta(
            int(last_seq), distinct["user_id"], distinct["item_id"], dict(by_type), first, last
        )

    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        with self._db.read() as connection:
            return _existing(connection, list(event_ids))

    def last_seq(self) -> int:
        (next_seq,) = (
            self._db.connection()
            .execute("SELECT value FROM meta WHERE key = 'next_seq'")
            .fetchone()
        )
        return int(next_seq) - 1

    def close(self) -> None:
        self._db.close()
        if self._duck is not None:
            self._duck.close()


# --- helpers ------------------------------------------------------------------------------


def _existing(connection: sqlite3.Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(ids):
        found.update(
            event_id
            for (event_id,) in connection.execute(
                f"SELECT event_id FROM event_ids WHERE event_id IN ({placeholders(len(chunk))})",
                chunk,
            )
        )
    return found


def _rows(table: pa.Table) -> Iterator[tuple[object, ...]]:
    """Table rows as tuples in TAIL_INSERT order, timestamps as epoch microseconds."""
    import pyarrow as pa  # lazy: see the imports

    columns = [table.column("seq").to_pylist()]
    for name in COLUMNS:
        column = table.column(name)
        if name in TIME_COLUMNS:
            column = column.cast(pa.int64())
        columns.append(column.to_pylist())
    return zip(*columns, strict=True)


def _tail_filter(query: EventQuery) -> tuple[str, list[object]]:
    """The query in SQLite's dialect (times as epoch microseconds, lists as JSON)."""
    clauses, params = query.clauses(
        "?",
        lambda column: f"{column} IN (SELECT value FROM json_each(?))",
        list_value=json.dumps,
        time_value=_micros,
    )
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _duck_filter(query: EventQuery) -> tuple[str, list[object]]:
    """The query in DuckDB's dialect."""
    clauses, params = query.clauses("?", lambda column: f"list_contains(?, {column})")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _tail_table(connection: sqlite3.Connection, where: str, params: list[object]) -> pa.Table:
    import pyarrow as pa  # lazy: see the imports

    from tastebud.schemas import EVENT_SCHEMA, TIMESTAMP_TYPE

    rows = connection.execute(f"SELECT seq, {QUOTED} FROM tail{where}", params).fetchall()
    names = ["seq", *COLUMNS]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = {}
    for name, values in zip(names, columns, strict=True):
        if name in TIME_COLUMNS:
            arrays[name] = pa.array(values, pa.int64()).view(TIMESTAMP_TYPE)
        elif name == "seq":
            arrays[name] = pa.array(values, pa.int64())
        else:
            arrays[name] = pa.array(values, EVENT_SCHEMA.field(name).type)
    # Built in the schema's own types, so no cast (and no pyarrow.compute) is needed.
    schema = tail_schema()
    return pa.Table.from_arrays([arrays[name] for name in schema.names], schema=schema)


def _to_schema(table: pa.Table, with_seq: bool) -> pa.Table:
    # lazy: EVENT_SCHEMA builds the Arrow schemas (pyarrow)
    from tastebud.schemas import EVENT_SCHEMA

    schema = tail_schema() if with_seq else EVENT_SCHEMA
    return table.select(schema.names).cast(schema)


def _min(column: pa.ChunkedArray) -> Any:
    import pyarrow.compute as pc  # lazy: see the imports

    return pc.min(column).as_py()


def _max(column: pa.ChunkedArray) -> Any:
    import pyarrow.compute as pc  # lazy: see the imports

    return pc.max(column).as_py()
