"""One pass over the event log for every check: the store's batches, aggregated in DuckDB.

The checks need little from each event: counts per hour, type and device, the newest event
per source, how many carry a session, device and locale, and counts per item and user. Each
batch the store yields (bounded memory) is reduced to those partial aggregates in DuckDB,
and the partials are reduced once more at the end, so the pass costs one read of the
window and no table of the window is ever held whole (docs/benchmarks.md, quality checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tastebud.stores import EventQuery, EventStore

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

HOUR_US = 3_600_000_000
BATCH_ROWS = 500_000


def micros(moment: datetime) -> int:
    """Exact microseconds since the epoch."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))


@dataclass(frozen=True)
class Bounds:
    """The periods one run reads, as epoch microseconds: the judged window [window, end),
    the baseline before it [baseline, window), and the first moment read at all."""

    first: int
    baseline: int
    window: int
    end: int


# Per batch: counts by hour, type and device, with the newest event and the fields present.
GROUPS = """
SELECT epoch_us("timestamp") // {hour} AS hour, event_type, device_type,
       count(*) AS n, max(epoch_us("timestamp")) AS newest,
       count(session_id) AS with_session, count(device_type) AS with_device,
       count(locale) AS with_locale
FROM batch GROUP BY ALL
"""
ITEMS = """
SELECT item_id,
       count(*) FILTER (WHERE epoch_us("timestamp") >= {window}) AS window_n,
       count(*) FILTER (WHERE epoch_us("timestamp") < {window}) AS baseline_n
FROM batch WHERE epoch_us("timestamp") >= {baseline} GROUP BY item_id
"""
SOURCES = """
SELECT epoch_us("timestamp") // {hour} AS hour, 'event_type' AS dimension,
       event_type AS value, count(DISTINCT user_id) AS users
FROM batch GROUP BY ALL
UNION ALL
SELECT epoch_us("timestamp") // {hour} AS hour, 'device_type' AS dimension,
       device_type AS value, count(DISTINCT user_id) AS users
FROM batch WHERE device_type IS NOT NULL GROUP BY ALL
"""
# Per batch: the sessions of each hour, the events they carry and the sum of each session's
# squared count: the volume check's events-per-session test (a session-hour split across
# two batches counts as two sessions, rarely).
SESSIONS = """
SELECT hour, count(*) AS sessions, sum(n)::BIGINT AS events, sum(n * n)::BIGINT AS squares
FROM (SELECT epoch_us("timestamp") // {hour} AS hour, session_id, count(*) AS n
      FROM batch WHERE session_id IS NOT NULL GROUP BY ALL)
GROUP BY hour
"""
USERS = """
SELECT user_id, count(*) AS n FROM batch
WHERE epoch_us("timestamp") >= {window} GROUP BY user_id
"""


@dataclass
class Partials:
    """The partial aggregates of the batches read so far."""

    groups: list[pa.Table] = field(default_factory=list)
    sources: list[pa.Table] = field(default_factory=list)
    items: list[pa.Table] = field(default_factory=list)
    users: list[pa.Table] = field(default_factory=list)
    sessions: list[pa.Table] = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class Scan:
    """What the checks need from one period of the log, fully reduced."""

    bounds: Bounds
    groups: pa.Table  # hour, event_type, device_type, n, newest, with_session/device/locale
    # hour, dimension (event_type or device_type), value, users: distinct users per batch (a
    # user whose hour spans two batches counts twice, rarely)
    sources: pa.Table
    items: pa.Table  # item_id, window_n, baseline_n
    users: pa.Table  # user_id, n (judged window only)
    rows: int
    sessions: pa.Table  # hour, sessions, events (with a session), squares (sum of n^2)


def batches(events: EventStore, start: datetime, end: datetime) -> Iterator[pa.RecordBatch]:
    yield from events.iter_batches(EventQuery(start=start, end=end), batch_size=BATCH_ROWS)


def scan(
    events: EventStore,
    bounds: Bounds,
    on_window_batch: Callable[[pa.Table], None] | None = None,
) -> Scan:
    """Read [first, end) once; ``on_window_batch`` also sees each batch's rows in the judged
    window (the schema check validates them as they pass)."""
    # lazy: DuckDB and pyarrow wait for a scan (quality history starts without them)
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    connection = duckdb.connect()
    partials = Partials()
    try:
        for batch in batches(events, from_micros(bounds.first), from_micros(bounds.end)):
            table = pa.Table.from_batches([batch])
            partials.rows += table.num_rows
            reduce_batch(connection, table, bounds, partials)
            if on_window_batch is not None:
                stamps = pc.cast(table.column("timestamp"), pa.int64())
                recent = table.filter(pc.greater_equal(stamps, bounds.window))
                if recent.num_rows:
                    on_window_batch(recent)
        return finish(connection, bounds, partials)
    finally:
        connection.close()


def reduce_batch(
    connection: duckdb.DuckDBPyConnection, table: pa.Table, bounds: Bounds, partials: Partials
) -> None:
    connection.register("batch", table)
    try:
        values = {"hour": HOUR_US, "window": bounds.window, "baseline": bounds.baseline}
        partials.groups.append(connection.sql(GROUPS.format(**values)).to_arrow_table())
        partials.sources.append(connection.sql(SOURCES.format(**values)).to_arrow_table())
        partials.items.append(connection.sql(ITEMS.format(**values)).to_arrow_table())
        partials.users.append(connection.sql(USERS.format(**values)).to_arrow_table())
        partials.sessions.append(connection.sql(SESSIONS.format(**values)).to_arrow_table())
    finally:
        connection.unregister("batch")


def _combined(connection: duckdb.DuckDBPyConnection, parts: list[Any], sql: str, empty: str) -> Any:
    """Reduce the partials once more (``sql`` over a table named ``parts``)."""
    import pyarrow as pa  # lazy: pyarrow waits for a scan (quality history starts without it)

    if not parts:
        return connection.sql(empty).to_arrow_table()
    connection.register("parts", pa.concat_tables(parts))
    try:
        return connection.sql(sql).to_arrow_table()
    finally:
        connection.unregister("parts")


def finish(connection: duckdb.DuckDBPyConnection, bounds: Bounds, partials: Partials) -> Scan:
    groups = _combined(
        connection,
        partials.groups,
        """SELECT hour, event_type, device_type, sum(n)::BIGINT AS n, max(newest) AS newest,
                  sum(with_session)::BIGINT AS with_session,
                  sum(with_device)::BIGINT AS with_device,
                  sum(with_locale)::BIGINT AS with_locale
           FROM parts GROUP BY ALL""",
        """SELECT 0::BIGINT AS hour, ''::VARCHAR AS event_type, ''::VARCHAR AS device_type,
                  0::BIGINT AS n, 0::BIGINT AS newest, 0::BIGINT AS with_session,
                  0::BIGINT AS with_device, 0::BIGINT AS with_locale LIMIT 0""",
    )
    sources = _combined(
        connection,
        partials.sources,
        """SELECT hour, dimension, value, sum(users)::BIGINT AS users
           FROM parts GROUP BY ALL""",
        """SELECT 0::BIGINT AS hour, ''::VARCHAR AS dimension, ''::VARCHAR AS value,
                  0::BIGINT AS users LIMIT 0""",
    )
    items = _combined(
        connection,
        partials.items,
        """SELECT item_id, sum(window_n)::BIGINT AS window_n,
                  sum(baseline_n)::BIGINT AS baseline_n FROM parts GROUP BY item_id""",
        "SELECT ''::VARCHAR AS item_id, 0::BIGINT AS window_n, 0::BIGINT AS baseline_n LIMIT 0",
    )
    users = _combined(
        connection,
        partials.users,
        "SELECT user_id, sum(n)::BIGINT AS n FROM parts GROUP BY user_id",
        "SELECT ''::VARCHAR AS user_id, 0::BIGINT AS n LIMIT 0",
    )
    sessions = _combined(
        connection,
        partials.sessions,
        """SELECT hour, sum(sessions)::BIGINT AS sessions, sum(events)::BIGINT AS events,
                  sum(squares)::BIGINT AS squares FROM parts GROUP BY hour""",
        """SELECT 0::BIGINT AS hour, 0::BIGINT AS sessions, 0::BIGINT AS events,
                  0::BIGINT AS squares LIMIT 0""",
    )
    return Scan(bounds, groups, sources, items, users, partials.rows, sessions)
