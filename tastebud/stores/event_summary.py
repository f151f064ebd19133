"""A running summary of the embedded event log (events by type, distinct users and items, the
time range), kept in the log's SQLite file so ``tastebud stats`` answers without scanning.

Why: the scan needs DuckDB, pyarrow and numpy (a third of a second to import) and grows with
the log; the summary is a few SQLite reads (docs/benchmarks.md, "Command-line start-up").

The summary covers exactly the events with ``seq <= summary_seq``. An append folds its own
rows in, in its write transaction, when the summary covered everything before it; otherwise
(a log written before the summary existed) the next ``stats`` reads the events after
``summary_seq`` once and folds them in. Events are never changed or removed (compaction only
moves them between tail and segments), so folding is all the maintenance there is.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tastebud.stores.base import EventStats

if TYPE_CHECKING:
    import pyarrow as pa

SUMMARY_SCHEMA = """
CREATE TABLE IF NOT EXISTS summary_users (user_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS summary_items (item_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS summary_types (
    event_type TEXT PRIMARY KEY, events INTEGER NOT NULL
) WITHOUT ROWID;
"""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Delta:
    """What a run of events adds to the summary; times in epoch microseconds."""

    last_seq: int
    users: Iterable[str]
    items: Iterable[str]
    by_type: Mapping[str, int]
    first_us: int | None
    last_us: int | None


def _meta(connection: sqlite3.Connection, key: str) -> int | None:
    row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def covered_seq(connection: sqlite3.Connection) -> int:
    """The last seq the summary covers (0 for a log written before the summary existed)."""
    return _meta(connection, "summary_seq") or 0


def is_current(connection: sqlite3.Connection) -> bool:
    """Whether the summary covers every stored event."""
    next_seq = _meta(connection, "next_seq") or 1
    return covered_seq(connection) == next_seq - 1


def _insert_new(connection: sqlite3.Connection, table: str, column: str, ids: list[str]) -> int:
    """Insert the ids not stored yet; returns how many were new. One statement over a JSON
    array: 2.5x faster than ``executemany`` (8,000 ids: 11 ms against 28 ms)."""
    before = connection.total_changes
    connection.execute(
        f"INSERT OR IGNORE INTO {table} ({column}) SELECT value FROM json_each(?)",
        (json.dumps(sorted(ids)),),  # sorted keys insert into the B-tree faster
    )
    return connection.total_changes - before


def fold(connection: sqlite3.Connection, delta: Delta) -> None:
    """Add ``delta`` to the summary, inside the caller's write transaction."""
    counters = {
        "summary_users": _insert_new(connection, "summary_users", "user_id", list(delta.users)),
        "summary_items": _insert_new(connection, "summary_items", "item_id", list(delta.items)),
    }
    for key, added in counters.items():
        connection.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = value + ?",
            (key, added, added),
        )
    connection.executemany(
        "INSERT INTO summary_types VALUES (?, ?)"
        " ON CONFLICT (event_type) DO UPDATE SET events = events + excluded.events",
        [(name, int(count)) for name, count in delta.by_type.items()],
    )
    for key, value, pick in (("summary_first", delta.first_us, "min"),
                             ("summary_last", delta.last_us, "max")):  # fmt: skip
        if value is not None:
            connection.execute(
                f"INSERT INTO meta VALUES (?, ?)"
                f" ON CONFLICT (key) DO UPDATE SET value = {pick}(value, excluded.value)",
                (key, int(value)),
            )
    connection.execute(
        "INSERT INTO meta VALUES ('summary_seq', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (delta.last_seq,),
    )


def batch_delta(table: pa.Table, last_seq: int) -> Delta:
    """The delta of one appended batch (``EVENT_SCHEMA`` rows)."""
    import pyarrow as pa  # lazy: only writers fold batches
    import pyarrow.compute as pc

    types = pc.value_counts(table.column("event_type"))
    times = pc.min_max(table.column("timestamp").cast(pa.int64())).as_py()
    return Delta(
        last_seq=last_seq,
        users=pc.unique(table.column("user_id")).to_pylist(),
        items=pc.unique(table.column("item_id")).to_pylist(),
        by_type=dict(
            zip(types.field("values").to_pylist(), types.field("counts").to_pylist(), strict=True)
        ),
        first_us=times["min"],
        last_us=times["max"],
    )


def read(connection: sqlite3.Connection) -> EventStats:
    """The summary as ``EventStats`` (current or not: the caller checks ``is_current``)."""
    by_type = connection.execute(
        "SELECT event_type, events FROM summary_types ORDER BY events DESC, event_type"
    ).fetchall()
    first, last = _meta(connection, "summary_first"), _meta(connection, "summary_last")
    return EventStats(
        events=sum(count for _, count in by_type),
        users=_meta(connection, "summary_users") or 0,
        items=_meta(connection, "summary_items") or 0,
        by_type={name: int(count) for name, count in by_type},
        first=None if first is None else EPOCH + timedelta(microseconds=first),
        last=None if last is None else EPOCH + timedelta(microseconds=last),
    )
