"""Bulk ingest of 1M events from Parquet: embedded store vs PostgreSQL, each beside a naive peer.

End to end (`tastebud ingest` path: read Parquet, validate, store) and store-only (append of
already validated Arrow batches) for:

* the embedded store (SQLite id index + Parquet segments) vs a plain SQLite row table with the
  secondary indexes a scan-by-user/item store would need (the design we rejected);
* the PostgreSQL store (COPY into a staging table + INSERT ... ON CONFLICT) vs psycopg's
  pipelined executemany of INSERT ... ON CONFLICT.

Run:  .venv/bin/python benchmarks/bench_ingest.py [--events 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

from tastebud.config import load_settings
from tastebud.data.bulk_load import ingest_sources
from tastebud.data.loaders import open_sources
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.stores import open_database, open_stores
from tastebud.stores.postgres import PostgresDatabase
from tastebud.stores.postgres_events import PostgresEventStore
from tastebud.validation import validate_event_table

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 100_000


def world(events: int, cache: Path) -> Path:
    users = max(100, events // 125)
    spec = WorldSpec(users=users, items=max(100, users), days=30, seed=7)
    folder = cache / f"world-{events}"
    if not (folder / "events.parquet").exists():
        generate_world(spec, folder)
    path = folder / "events.parquet"
    table = pq.read_table(path)
    if table.num_rows > events:
        trimmed = folder / f"events-{events}.parquet"
        if not trimmed.exists():
            pq.write_table(table.slice(0, events), trimmed)
        return trimmed
    return path


def fresh_schema() -> tuple[str, Callable[[], None]]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")

    return f"{POSTGRES}?options=-csearch_path%3D{schema}", drop


def end_to_end(path: Path, database_url: str, home: Path) -> float:
    settings = load_settings(home=home, database_url=database_url, online_url="memory://")
    with open_stores(settings) as stores:
        started = time.perf_counter()
        report = ingest_sources(open_sources(path), stores, settings)
        elapsed = time.perf_counter() - started
    assert report.sources[0].stored == pq.ParquetFile(path).metadata.num_rows, report.as_dict()
    return elapsed


def validated_batches(path: Path) -> list[pa.Table]:
    rules = load_settings().events
    return [
        validate_event_table(pa.Table.from_batches([batch]), rules).table
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH)
    ]


def store_only_embedded(batches: list[pa.Table], root: Path) -> float:
    with open_database(f"embedded://{root}") as database:
        started = time.perf_counter()
        for batch in batches:
            database.events.append_arrow(batch)
        return time.perf_counter() - started


def store_only_sqlite_rows(batches: list[pa.Table], root: Path) -> float:
    """The peer: one SQLite row table, unique event_id, indexes on user, item and time."""
    root.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(root / "rows.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA cache_size=-65536")
    connection.executescript(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, user_id TEXT,"
        " item_id TEXT, event_type TEXT, value REAL, ts INTEGER, session_id TEXT,"
        " device_type TEXT, locale TEXT, schema_version INTEGER, context TEXT,"
        " received_at INTEGER);"
        "CREATE INDEX events_user ON events (user_id, ts);"
        "CREATE INDEX events_item ON events (item_id, ts);"
        "CREATE INDEX events_time ON events (ts);"
    )
    started = time.perf_counter()
    for batch in batches:
        columns = [
            batch.column(name).cast(pa.int64()).to_pylist()
            if name in ("timestamp", "received_at")
            else batch.column(name).to_pylist()
            for name in batch.column_names
        ]
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO events (event_id, user_id, item_id, event_type, value, ts, session_id,"
            " device_type, locale, schema_version, context, received_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
            zip(*columns, strict=True),
        )
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def store_only_postgres(batches: list[pa.Table]) -> float:
    url, drop = fresh_schema()
    try:
        database = PostgresDatabase(url)
        store = PostgresEventStore(database, owns_database=True)
        started = time.perf_counter()
        for batch in batches:
            store.append_arrow(batch)
        elapsed = time.perf_counter() - started
        store.close()
    finally:
        drop()
    return elapsed


def store_only_postgres_executemany(batches: list[pa.Table]) -> float:
    """The peer: psycopg's pipelined executemany of INSERT ... ON CONFLICT DO NOTHING."""
    url, drop = fresh_schema()
    try:
        database = PostgresDatabase(url)
        store = PostgresEventStore(database, owns_database=True)  # same table and indexes
        started = time.perf_counter()
        for batch in batches:
            rows = zip(
                *[batch.column(name).to_pylist() for name in batch.column_names], strict=True
            )
            with database.transaction() as connection, connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO events (event_id, user_id, item_id, event_type, value,"
                    ' "timestamp", session_id, device_type, locale, schema_version, context,'
                    " received_at)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    rows,
                )
        elapsed = time.perf_counter() - started
        store.close()
    finally:
        drop()
    return elapsed


def summarize(name: str, seconds: list[float], rows: int) -> dict[str, Any]:
    median = statistics.median(seconds)
    return {
        "name": name,
        "rows": rows,
        "runs": len(seconds),
        "median_seconds": round(median, 3),
        "median_events_per_second": round(rows / median),
        "all_seconds": [round(s, 3) for s in seconds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--peer-events",
        type=int,
        default=None,
        help="rows for the peers (default: all, so both sides build the same index sizes)",
    )
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "tastebud-bench"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "ingest.json"
    )
    args = parser.parse_args()

    path = world(args.events, args.cache)
    rows = pq.ParquetFile(path).metadata.num_rows
    print(f"{rows:,} events in {path}", flush=True)
    batches = validated_batches(path)
    peer_batches = _first_rows(batches, args.peer_events or rows)
    peer_rows = sum(b.num_rows for b in peer_batches)

    results: list[dict[str, Any]] = []
    timings: dict[str, list[float]] = {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(dir=args.cache) as scratch:
            scratch_path = Path(scratch)
            timings.setdefault("end_to_end.embedded", []).append(
                end_to_end(path, f"embedded://{scratch_path / 'db'}", scratch_path)
            )
            url, drop = fresh_schema()
            try:
                timings.setdefault("end_to_end.postgres", []).append(
                    end_to_end(path, url, scratch_path / "pg-home")
                )
            finally:
                drop()
            timings.setdefault("store_only.embedded", []).append(
                store_only_embedded(batches, scratch_path / "store")
            )
            timings.setdefault("store_only.postgres_copy", []).append(store_only_postgres(batches))
            timings.setdefault("peer.sqlite_row_table_with_indexes", []).append(
                store_only_sqlite_rows(peer_batches, scratch_path / "peer")
            )
            timings.setdefault("peer.postgres_executemany", []).append(
                store_only_postgres_executemany(peer_batches)
            )
        print(
            f"run {run + 1}/{args.runs}: "
            + ", ".join(f"{k}={v[-1]:.2f}s" for k, v in timings.items()),
            flush=True,
        )

    for name, seconds in timings.items():
        results.append(summarize(name, seconds, peer_rows if name.startswith("peer.") else rows))
    by_name = {r["name"]: r for r in results}
    ratios = {
        "embedded_vs_sqlite_row_table": round(
            by_name["store_only.embedded"]["median_events_per_second"]
            / by_name["peer.sqlite_row_table_with_indexes"]["median_events_per_second"],
            2,
        ),
        "postgres_copy_vs_executemany": round(
            by_name["store_only.postgres_copy"]["median_events_per_second"]
            / by_name["peer.postgres_executemany"]["median_events_per_second"],
            2,
        ),
    }
    document = {
        "benchmark": "ingest",
        "machine": describe(),
        "results": results,
        "ratios": ratios,
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2))
    print(json.dumps(document, indent=2))


def _first_rows(batches: list[pa.Table], limit: int) -> list[pa.Table]:
    taken, total = [], 0
    for batch in batches:
        if total >= limit:
            break
        piece = batch.slice(0, limit - total)
        taken.append(piece)
        total += piece.num_rows
    return taken


if __name__ == "__main__":
    main()
