"""The event log exported as Parquet partitioned by day, from every event store backend:
every row once, in its day's folder; a day exported again is replaced; an export
interrupted midway leaves no partial day behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from event_factories import T0, make_events

from tastebud.schemas import EVENT_SCHEMA
from tastebud.stores import EventStore, open_database
from tastebud.stores.export import export_events

# 3,000 events a minute apart: three days (T0 is midnight), in batches of 700.
COUNT = 3_000


@pytest.fixture(params=["embedded", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else f"embedded://{tmp_path / 'db'}?segment_rows=500&compact_rows=600"
    )
    with open_database(url) as database:
        database.events.append(make_events(COUNT))
        yield database.events


def days_of(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_every_event_lands_once_in_its_day(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    result = export_events(store, str(out), batch_size=700)
    assert result.rows == COUNT
    assert result.days == {"2024-01-01": 1440, "2024-01-02": 1440, "2024-01-03": 120}
    assert days_of(out) == ["day=2024-01-01", "day=2024-01-02", "day=2024-01-03"]
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == COUNT
    assert sorted(table.column("event_id").to_pylist()) == sorted(
        store.read_arrow().column("event_id").to_pylist()
    )
    assert table.select(EVENT_SCHEMA.names).schema.field("timestamp").type == (
        EVENT_SCHEMA.field("timestamp").type
    )
    for day in ("2024-01-01", "2024-01-02"):
        part = ds.dataset(out / f"day={day}", format="parquet").to_table()
        assert {moment.date().isoformat() for moment in part.column("timestamp").to_pylist()} == {
            day
        }


def test_a_window_and_columns_and_a_day_exported_again_replaces_it(
    store: EventStore, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    export_events(store, str(out))
    since = T0 + timedelta(days=1, hours=12)
    result = export_events(store, str(out), start=since, columns=["user_id", "timestamp"])
    assert result.days == {"2024-01-02": 720, "2024-01-03": 120}
    second = ds.dataset(out / "day=2024-01-02", format="parquet").to_table()
    assert second.num_rows == 720 and second.column_names == ["user_id", "timestamp"]
    first = ds.dataset(out / "day=2024-01-01", format="parquet").to_table()
    assert first.num_rows == 1440  # untouched
    with pytest.raises(ValueError, match="unknown event columns"):
        export_events(store, str(out), columns=["user_id", "nope"])


def test_an_interrupted_export_leaves_no_partial_day(store: EventStore, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    calls = 0

    def interrupt() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # two batches (two days) written, then the run is abandoned
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        export_events(store, str(out), batch_size=700, check=interrupt)
    assert days_of(out) == []  # no day folder, and no staging folder left either
    export_events(store, str(out))
    assert days_of(out) == ["day=2024-01-01", "day=2024-01-02", "day=2024-01-03"]
