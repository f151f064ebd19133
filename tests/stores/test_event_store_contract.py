"""The EventStore contract, run against every backend (embedded, PostgreSQL)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from event_factories import T0, make_events

from tastebud.schemas import EVENT_SCHEMA, Event
from tastebud.stores import EventQuery, EventStore, open_database


@pytest.fixture(params=["embedded", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        # Small thresholds so the tests cross the tail, segment, compaction and merge paths,
        # in this process and in the writer processes alike.
        return f"embedded://{tmp_path / 'db'}?segment_rows=20&compact_rows=30&max_small_segments=3"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_database(store_url) as database:
        yield database.events


def as_dicts(events: list[Event]) -> list[dict[str, object]]:
    return [event.model_dump(mode="json") for event in events]


def test_round_trip_keeps_every_field(store: EventStore) -> None:
    events = make_events(12)
    result = store.append(events)
    assert result.inserted == 12 and result.duplicates == []
    assert as_dicts(store.scan()) == as_dicts(events)


def test_replayed_events_are_stored_once(store: EventStore) -> None:
    events = make_events(25)
    store.append(events[:10])
    result = store.append(events)
    assert result.inserted == 15
    assert sorted(result.duplicates) == sorted(e.event_id for e in events[:10])
    again = store.append(events)
    assert again.inserted == 0 and len(again.duplicates) == 25
    assert store.count() == 25


def test_large_batches_keep_every_field_and_report_replays(store: EventStore) -> None:
    """Past a few rows backends may switch to a bulk path (PostgreSQL: COPY)."""
    events = make_events(700)
    store.append(events[:300])
    result = store.append(events)
    assert result.inserted == 400
    assert sorted(result.duplicates) == sorted(e.event_id for e in events[:300])
    assert as_dicts(store.scan()) == as_dicts(events)


def test_repeats_within_a_batch_are_duplicates(store: EventStore) -> None:
    events = make_events(3)
    result = store.append([events[0], events[1], events[0], events[2], events[0]])
    assert result.inserted == 3
    assert result.duplicates == ["e0", "e0"]
    assert store.count() == 3


def test_empty_store(store: EventStore) -> None:
    assert store.count() == 0
    assert store.last_seq() == 0
    table = store.read_arrow()
    assert table.num_rows == 0 and table.schema == EVENT_SCHEMA
    stats = store.stats()
    assert (stats.events, stats.users, stats.items, stats.by_type) == (0, 0, 0, {})
    assert store.append([]).inserted == 0


def test_scans_filter_by_time_user_item_and_type(store: EventStore) -> None:
    events = make_events(60)
    store.append(events[:25])
    store.append(events[25:])  # the second batch takes the bulk (segment) path on embedded
    start, end = T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
    in_window = store.scan(EventQuery(start=start, end=end))
    assert [e.event_id for e in in_window] == [f"e{i}" for i in range(10, 20)]
    by_user = store.scan(EventQuery(user_ids=["u1", "u2"]))
    assert {e.event_id for e in by_user} == {
        e.event_id for e in events if e.user_id in ("u1", "u2")
    }
    by_item = store.scan(EventQuery(item_ids=["i3"], event_types=["play", "like"]))
    expected = {
        e.event_id for e in events if e.item_id == "i3" and e.event_type in ("play", "like")
    }
    assert {e.event_id for e in by_item} == expected and expected
    assert store.count(EventQuery(user_ids=["u1"], start=start)) == sum(
        1 for e in events if e.user_id == "u1" and e.timestamp >= start
    )
    assert store.scan(EventQuery(user_ids=["nobody"])) == []


def test_newest_first_with_limit(store: EventStore) -> None:
    store.append(make_events(40))
    newest = store.scan(EventQuery(user_ids=["u0"], order="desc", limit=3))
    assert [e.event_id for e in newest] == ["e35", "e30", "e25"]
    assert store.count(EventQuery(limit=7)) == 7


def test_seq_orders_commits_and_supports_incremental_reads(store: EventStore) -> None:
    events = make_events(50)
    store.append(events[:5])
    mark = store.last_seq()
    store.append(events[5:45])
    store.append(events[45:])
    assert store.last_seq() >= mark + 45
    later = store.read_arrow(EventQuery(after_seq=mark), with_seq=True)
    assert sorted(later.column("event_id").to_pylist()) == sorted(e.event_id for e in events[5:])
    assert min(later.column("seq").to_pylist()) > mark


def test_stats(store: EventStore) -> None:
    events = make_events(30, users=4, items=6)
    store.append(events)
    stats = store.stats()
    assert stats.events == 30 and stats.users == 4 and stats.items == 6
    assert stats.by_type == {"play": 6, "like": 6, "skip": 6, "view": 6, "purchase": 6}
    assert stats.first == T0 and stats.last == T0 + timedelta(minutes=29)


def test_existing_ids(store: EventStore) -> None:
    store.append(make_events(5))
    assert store.existing_ids(["e1", "e4", "zzz"]) == {"e1", "e4"}


def test_export_parquet_streams_everything(store: EventStore, tmp_path: Path) -> None:
    events = make_events(70)
    store.append(events[:3])
    store.append(events[3:])
    path = tmp_path / "export.parquet"
    assert store.export_parquet(path) == 70
    table = pq.read_table(path)
    assert table.schema == EVENT_SCHEMA
    assert sorted(table.column("event_id").to_pylist()) == sorted(e.event_id for e in events)
    contexts = {
        r["event_id"]: r["context"] for r in table.select(["event_id", "context"]).to_pylist()
    }
    assert json.loads(contexts["e4"]) == {"n": 4, "page": "home"} and contexts["e1"] is None
    batches = list(store.iter_batches(EventQuery(event_types=["play"]), batch_size=5))
    assert all(batch.num_rows <= 5 for batch in batches)
    assert sum(batch.num_rows for batch in batches) == 14


def test_data_survives_reopening(store_url: str) -> None:
    with open_database(store_url) as database:
        database.events.append(make_events(8))
    with open_database(store_url) as database:
        assert database.events.count() == 8


WRITER = textwrap.dedent(
    """
    import sys
    from tastebud.stores import open_database
    from event_factories import make_events
    events = open_database(sys.argv[1]).events
    start, stop, step = (int(v) for v in sys.argv[2:5])
    inserted = 0
    everything = make_events(stop)
    for first in range(start, stop, step):
        inserted += events.append(everything[first : first + step]).inserted
        print(first + step, flush=True)
    print("inserted", inserted, flush=True)
    """
)


def _writer(url: str, start: int, stop: int, step: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(start), str(stop), str(step)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )


def test_two_processes_append_overlapping_batches_exactly_once(store_url: str) -> None:
    # Both writers cover events 0..599 in different batch sizes while this process reads.
    first, second = _writer(store_url, 0, 600, 7), _writer(store_url, 0, 600, 50)
    database = open_database(store_url)
    events = database.events
    while first.poll() is None or second.poll() is None:
        events.count(EventQuery(user_ids=["u1"]))
    outputs = [first.communicate()[0], second.communicate()[0]]
    assert first.returncode == 0 and second.returncode == 0
    inserted = sum(int(out.strip().splitlines()[-1].split()[1]) for out in outputs)
    assert inserted == 600
    table = events.read_arrow()
    assert table.num_rows == 600
    assert len(set(table.column("event_id").to_pylist())) == 600
    database.close()


def test_acknowledged_appends_survive_kill_9(store_url: str) -> None:
    writer = _writer(store_url, 0, 100_000, 3)
    assert writer.stdout is not None
    acknowledged = 0
    deadline = time.monotonic() + 30
    while acknowledged < 300 and time.monotonic() < deadline:
        acknowledged = int(writer.stdout.readline())
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert acknowledged >= 300
    with open_database(store_url) as database:
        stored = set(database.events.read_arrow().column("event_id").to_pylist())
    assert {f"e{i}" for i in range(acknowledged)} <= stored
