"""What only the embedded event store has: segments, compaction, merges and crash leftovers."""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
from event_factories import make_events

from tastebud.schemas import EVENT_SCHEMA
from tastebud.stores import StoreError, open_database
from tastebud.stores.base import EventStats
from tastebud.stores.embedded_events import COLUMNS, EmbeddedEventStore


def segment_files(root: Path) -> set[str]:
    return {path.name for path in (root / "segments").glob("*.parquet")}


def test_tail_compacts_and_small_segments_merge(tmp_path: Path) -> None:
    root = tmp_path / "events"
    store = EmbeddedEventStore(
        root, segment_rows=1_000, compact_rows=10, max_small_segments=2, retired_grace_seconds=0.2
    )
    events = make_events(45)
    for start in range(0, 45, 3):
        store.append(events[start : start + 3])
        store.compact()  # each call turns a 3-row tail into a small segment
    # More than two small segments at a time get merged into one.
    assert store.count() == 45
    assert sorted(e.event_id for e in store.scan()) == sorted(e.event_id for e in events)
    retired_before = segment_files(root)
    assert len(retired_before) > 1
    time.sleep(0.3)
    store.compact()  # the retired segments are past their grace period now
    assert len(segment_files(root)) < len(retired_before)
    assert store.count() == 45 and len(store.scan()) == 45
    store.close()


def test_retired_segments_outlive_the_grace_period_for_old_readers(tmp_path: Path) -> None:
    root = tmp_path / "events"
    store = EmbeddedEventStore(root, segment_rows=5, compact_rows=1_000, max_small_segments=2)
    events = make_events(30)
    for start in range(0, 30, 5):
        store.append(events[start : start + 5])  # each append is its own small segment
    store.compact()  # merges them; the retired files must stay (grace: one hour)
    snapshot_files = segment_files(root)
    assert len(snapshot_files) >= 6
    store.compact()
    assert segment_files(root) == snapshot_files
    assert store.count() == 30
    store.close()


def test_an_unregistered_segment_from_a_crash_is_ignored_and_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "events"
    store = EmbeddedEventStore(root, segment_rows=5, retired_grace_seconds=0.0)
    store.append(make_events(10))
    orphan = root / "segments" / "seg-9999999999.parquet"
    first = next((root / "segments").glob("seg-*.parquet"))
    orphan.write_bytes(first.read_bytes())  # a complete file no transaction registered
    os.utime(orphan, (time.time() - 10, time.time() - 10))
    assert store.count() == 10 and store.stats().events == 10
    store.compact()
    assert not orphan.exists()
    assert store.count() == 10
    store.close()


def test_appends_during_a_compaction_are_kept_and_stored_once(tmp_path: Path) -> None:
    """Compaction writes Parquet outside the write lock: events appended meanwhile (here by a
    second store on the same folder, as another worker would) stay in the tail."""
    root = tmp_path / "events"
    store = EmbeddedEventStore(root, compact_rows=1_000)
    other = EmbeddedEventStore(root, compact_rows=1_000)
    events = make_events(60)
    store.append(events[:40])
    write_file = store._write_segment_file

    def write_while_appending(table):  # type: ignore[no-untyped-def]
        other.append(events[40:])  # committed while the segment is being written
        return write_file(table)

    store._write_segment_file = write_while_appending  # type: ignore[method-assign]
    store.compact()
    assert store.count() == 60
    assert sorted(e.event_id for e in store.scan()) == sorted(e.event_id for e in events)
    store._write_segment_file = write_file  # type: ignore[method-assign]
    store.compact()
    assert other.count() == 60 and len(other.scan()) == 60
    store.close()
    other.close()


def test_a_compaction_that_lost_the_race_discards_its_file(tmp_path: Path) -> None:
    root = tmp_path / "events"
    store = EmbeddedEventStore(root, compact_rows=1_000, retired_grace_seconds=3600)
    other = EmbeddedEventStore(root, compact_rows=1_000, retired_grace_seconds=3600)
    store.append(make_events(20))
    write_file = store._write_segment_file

    def write_after_the_other_compacted(table):  # type: ignore[no-untyped-def]
        segment = write_file(table)
        other._compact_tail()  # moved the same rows first
        return segment

    store._write_segment_file = write_after_the_other_compacted  # type: ignore[method-assign]
    store._compact_tail()
    assert store.count() == 20 and len(store.scan()) == 20
    assert len(segment_files(root)) == 1  # the loser's file is gone
    store.close()
    other.close()


def test_tuning_comes_from_the_url(tmp_path: Path) -> None:
    with open_database(f"embedded://{tmp_path}?compact_rows=7&segment_rows=3") as database:
        events = database.events
        assert isinstance(events, EmbeddedEventStore)
        assert (events.compact_rows, events.segment_rows) == (7, 3)
    with pytest.raises(StoreError, match="unknown embedded store option"):
        open_database(f"embedded://{tmp_path}?colour=blue")
    with pytest.raises(StoreError, match="not a number"):
        open_database(f"embedded://{tmp_path}?compact_rows=lots")


def scanned_stats(store: EmbeddedEventStore) -> EventStats:
    """The stats counted from every stored row, as the summary must give them."""
    table = store.read_arrow()
    times = table.column("timestamp").to_pylist()
    by_type = Counter(table.column("event_type").to_pylist())
    return EventStats(
        events=table.num_rows,
        users=len(set(table.column("user_id").to_pylist())),
        items=len(set(table.column("item_id").to_pylist())),
        by_type=dict(sorted(by_type.items(), key=lambda pair: (-pair[1], pair[0]))),
        first=min(times),
        last=max(times),
    )


def summary_seq(root: Path) -> int:
    with sqlite3.connect(root / "events.db") as connection:
        row = connection.execute("SELECT value FROM meta WHERE key = 'summary_seq'").fetchone()
    return row[0] if row else 0


def test_the_stored_summary_matches_a_full_scan(tmp_path: Path) -> None:
    """Tail appends, repeats, bulk segments, compactions and merges: the summary each append
    folds in gives what a scan of the rows gives, in the same order."""
    store = EmbeddedEventStore(tmp_path, segment_rows=20, compact_rows=15, max_small_segments=2)
    events = make_events(130, users=7, items=11)
    events[-1] = events[-1].model_copy(update={"event_type": "share"})  # a rare type, last
    for batch in (events[:5], events[3:10], events[10:40], events[40:45], events[45:]):
        store.append(batch)  # events[3:5] are repeats: counted once
        assert summary_seq(tmp_path) == store.last_seq()  # folded in by the append itself
        assert store.stats() == scanned_stats(store)
    store.compact()
    assert store.stats() == scanned_stats(store)
    assert list(store.stats().by_type)[-1] == "share"
    store.close()


def test_a_log_written_before_the_summary_is_summarised_on_the_first_stats(
    tmp_path: Path,
) -> None:
    store = EmbeddedEventStore(tmp_path, segment_rows=20)
    events = make_events(60, users=6, items=9)
    store.append(events[:30])
    with sqlite3.connect(tmp_path / "events.db") as connection:  # as an older version left it
        connection.execute("DELETE FROM meta WHERE key LIKE 'summary_%'")
        for table in ("summary_users", "summary_items", "summary_types"):
            connection.execute(f"DELETE FROM {table}")
    store.append(events[30:35])  # not folded: the summary does not cover what came before
    assert store.stats() == scanned_stats(store)  # every event folded in by one scan
    store.append(events[35:])  # the summary is current again, so appends fold themselves in
    assert summary_seq(tmp_path) == store.last_seq()
    assert store.stats() == scanned_stats(store)
    store.close()


def test_the_column_names_are_the_event_schemas() -> None:
    assert tuple(EVENT_SCHEMA.names) == COLUMNS
