"""Per-user metric values from events and exposures, in a world small enough that every
value is known by hand (tastebud.experiments.metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastebud.config import ExperimentSettings, default_metrics
from tastebud.experiments.definition import Experiment
from tastebud.experiments.exposure import EXPOSURE_SCHEMA, Exposure, exposures_table
from tastebud.experiments.metrics import NoExposures, experiment_data
from tastebud.experiments.served import distinct_per_row
from tastebud.experiments.sources import SourceError, events_reader
from tastebud.schemas import Event, events_to_arrow
from tastebud.stores import open_database
from tastebud.stores.export import export_events

T0 = datetime(2024, 3, 10, tzinfo=UTC)
NOW = T0 + timedelta(days=3)
CREATORS = {"a": "x", "b": "x", "c": "y", "e": "z"}  # "d" has no known creator


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def exposure(
    list_id: str,
    hours: float,
    user: str | None,
    variant: str | None,
    items: tuple[str, ...],
    latency: float,
    *,
    experiment: str | None = "exp",
    session: str | None = None,
) -> Exposure:
    return Exposure(
        list_id=list_id,
        served_at=at(hours),
        experiment=experiment if variant else None,
        variant=variant,
        user_id=user,
        session_id=session,
        items=items,
        model_version="m1",
        latency_ms=latency,
    )


EXPOSURES = [
    # u1, control: a list of creators x, x, y; later an empty one; before, an ordinary list
    exposure("L1", 1, "u1", "control", ("a", "b", "c"), 10.0),
    exposure("L2", 30, "u1", "control", (), 20.0),
    exposure("P1", -24, "u1", None, ("a", "b"), 5.0),
    exposure("P0", -24 * 8, "u1", None, ("a",), 5.0),  # before the 7-day pre-period
    exposure("O1", 2, "u1", "B", ("e",), 99.0, experiment="other"),  # another experiment
    # u2, control, first seen on day 2: one creator among three items
    exposure("L3", 49, "u2", "control", ("a", "a", "b"), 30.0),
    # u3, treatment: an item with no known creator is its own
    exposure("L4", 1, "u3", "treatment", ("c", "d"), 40.0),
    # an anonymous visitor, counted by session
    exposure("L7", 5, None, "treatment", ("b",), 50.0, session="anon1"),
    # u4 in both variants (a bug): left out; u5 in a variant the definition lacks
    exposure("L5", 1, "u4", "control", ("a",), 1.0),
    exposure("L6", 2, "u4", "treatment", ("e",), 1.0),
    exposure("L8", 2, "u5", "ghost", ("e",), 1.0),
    # served after now: not counted
    exposure("L9", 24 * 3 + 1, "u6", "treatment", ("a",), 1.0),
]


def event(
    name: str,
    user: str,
    kind: str,
    hours: float,
    *,
    value: float | None = None,
    session: str | None = None,
    list_id: str | None = None,
) -> Event:
    return Event(
        event_id=name,
        user_id=user,
        item_id="a",
        event_type=kind,
        value=value,
        timestamp=at(hours),
        session_id=session,
        context={"list_id": list_id, "page": "home"} if list_id else {},
    )


EVENTS = [
    event("e1", "u1", "click", 2, list_id="L1"),  # exact
    event("e2", "u1", "click", 3),  # 2 h after L1: the window counts it
    event("e3", "u1", "click", 28),  # 27 h after L1: only a 48 h window counts it
    event("e4", "u1", "click", 31),  # 1 h after L2
    event("e5", "u1", "click", 4, list_id="O1"),  # names a list outside the experiment
    event("e6", "u1", "click", -48),  # pre-period
    event("e7", "u1", "click", -24 * 10),  # before the pre-period
    event("e8", "u1", "play", 5, value=100.0, session="s1"),
    event("e9", "u1", "play", 6, value=50.0, session="s1"),
    event("e10", "u1", "skip", 6.5, session="s1"),
    event("e11", "u1", "purchase", 7),
    event("e12", "u1", "play", -30, value=10.0, session="s0"),  # pre-period session
    event("e13", "u1", "skip", -29.5, session="s0"),
    event("e14", "u2", "like", 50, list_id="L3"),
    event("e15", "u2", "click", 10),  # before u2's first exposure (49 h): its pre-period
    event("e16", "u3", "click", 40, list_id="L4"),  # exact: counts beyond the window
    event("e17", "u3", "play", 2, session="s9"),
    event("e18", "anon1", "click", 6, list_id="L7"),
    event("e19", "u4", "click", 3, list_id="L5"),  # the excluded user
    event("e20", "u5", "click", 3),
    event("e21", "u1", "click", 24 * 3 + 0.5),  # after now
]


def experiment() -> Experiment:
    return Experiment(
        key="exp",
        variants=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        goals=["click_through"],
        start=T0,
    )


def settings(**metrics: object) -> ExperimentSettings:
    return ExperimentSettings(pre_period_days=7, metrics=metrics)


def analyze(events: object = None, exposures: object = None, **kwargs: object):
    return experiment_data(
        experiment(),
        kwargs.pop("config", settings()),
        events if events is not None else events_to_arrow(EVENTS),
        exposures if exposures is not None else exposures_table(EXPOSURES),
        catalog_size=10,
        now=NOW,
        creators=CREATORS,
        **kwargs,
    )


def values(data, metric: str, field: str = "numerator") -> dict[str, list[float] | None]:
    """One field of a metric's samples per variant, as lists."""
    out: dict[str, list[float] | None] = {}
    for name, sample in data.metrics[metric].variants.items():
        value = getattr(sample, field)
        out[name] = None if value is None else [float(v) for v in value]
    return out


# Users in uid order: control u1, u2; treatment anon1, u3 (each variant sorted by id).
def test_users_and_their_variants() -> None:
    data = analyze()
    assert data.variants == ["control", "treatment"]
    assert data.weights == [0.5, 0.5]
    assert data.exposed_users == {"control": 2, "treatment": 2}
    assert data.multiple_variant_users == 1
    assert data.days == 3
    assert values(data, "click_through", "first_day") == {"control": [0, 2], "treatment": [0, 0]}


def test_click_through_exact_and_window_attribution() -> None:
    data = analyze()
    assert values(data, "click_through") == {"control": [3, 0], "treatment": [1, 1]}
    assert values(data, "click_through", "denominator") == {
        "control": [3, 3],
        "treatment": [1, 2],
    }
    # Pre-period: u1's click two days before and the list a day before; u2's click at 10 h
    # falls in its own pre-period (first exposure at 49 h).
    assert values(data, "click_through", "pre_numerator") == {
        "control": [1, 1],
        "treatment": [0, 0],
    }
    assert values(data, "click_through", "pre_denominator") == {
        "control": [2, 0],
        "treatment": [0, 0],
    }


def test_a_wider_window_counts_later_events() -> None:
    spec = {"kind": "mean", "numerator": {"source": "events", "events": ["click"]}}
    config = settings(clicks_48h={**spec, "window_hours": 48}, clicks_24h=spec)
    data = analyze(config=config, metrics=["clicks_24h", "clicks_48h"])
    assert values(data, "clicks_24h")["control"] == [3, 0]
    assert values(data, "clicks_48h")["control"] == [4, 0]


def test_conversion_plays_play_time_and_skip_rate() -> None:
    data = analyze()
    assert values(data, "conversion") == {"control": [1, 1], "treatment": [0, 0]}
    assert values(data, "plays_per_user") == {"control": [2, 0], "treatment": [0, 1]}
    assert values(data, "play_time") == {"control": [150, 0], "treatment": [0, 0]}
    assert values(data, "play_time", "pre_numerator")["control"] == [10, 0]
    assert values(data, "skip_rate") == {"control": [1, 0], "treatment": [0, 0]}
    assert values(data, "skip_rate", "denominator") == {"control": [3, 0], "treatment": [0, 1]}
    assert values(data, "skip_rate", "pre_numerator")["control"] == [1, 0]


def test_session_length() -> None:
    data = analyze()
    # u1's session s1 runs from the play at 5 h to the skip at 6.5 h; u3's s9 is one event.
    assert values(data, "session_length") == {"control": [5400, 0], "treatment": [0, 0]}
    assert values(data, "session_length", "denominator") == {
        "control": [1, 0],
        "treatment": [0, 1],
    }
    assert values(data, "session_length", "pre_numerator")["control"] == [1800, 0]


def test_diversity_coverage_latency_and_empty_lists() -> None:
    data = analyze()
    diversity = values(data, "diversity")
    assert diversity["control"] == pytest.approx([2 / 3, 1 / 3])
    assert diversity["treatment"] == pytest.approx([1.0, 1.0])
    assert values(data, "diversity", "denominator") == {"control": [1, 1], "treatment": [1, 1]}
    assert data.metrics["diversity"].variants["control"].pre_numerator is None
    assert values(data, "empty_lists") == {"control": [1, 0], "treatment": [0, 0]}
    assert values(data, "empty_lists", "denominator") == {"control": [2, 1], "treatment": [1, 1]}
    coverage = data.metrics["coverage"].variants
    assert (coverage["control"].distinct, coverage["treatment"].distinct) == (3, 3)
    assert coverage["control"].catalog == 10
    latency = data.metrics["latency_p95"].variants
    assert list(latency["control"].values) == [10, 20, 30]
    assert sorted(latency["treatment"].values) == [40, 50]
    assert values(data, "latency_p95") == {"control": [30, 30], "treatment": [50, 40]}


def test_parquet_files_and_factories_give_the_same_data(tmp_path: Path) -> None:
    events, exposures = tmp_path / "events", tmp_path / "exposures"
    for folder, table in (
        (events, events_to_arrow(EVENTS)),
        (exposures, exposures_table(EXPOSURES)),
    ):
        (folder / "day=1").mkdir(parents=True)
        pq.write_table(table.slice(0, 5), folder / "day=1" / "part-a.parquet")
        pq.write_table(table.slice(5), folder / "part-b.parquet", row_group_size=3)
    seen: list[tuple[datetime, datetime]] = []

    def scan(since: datetime, until: datetime) -> pa.Table:
        seen.append((since, until))
        return exposures_table(EXPOSURES)

    from_files = analyze(events, exposures)
    from_factory = analyze(events, scan)
    expected = analyze()
    assert seen == [(T0 - timedelta(days=7), NOW)]
    for data in (from_files, from_factory):
        for name in default_metrics():
            for field in ("numerator", "denominator", "pre_numerator", "values"):
                got, want = values(data, name, field), values(expected, name, field)
                if field == "values" and want["control"] is not None:
                    got = {k: sorted(v or []) for k, v in got.items()}
                    want = {k: sorted(v or []) for k, v in want.items()}
                assert got == want, (name, field)


def test_no_exposures_is_a_clear_error() -> None:
    with pytest.raises(NoExposures, match="no exposures"):
        analyze(exposures=exposures_table([e for e in EXPOSURES if e.experiment != "exp"]))


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        analyze(metrics=["nope"])
    with pytest.raises(SourceError, match="no Parquet file"):
        analyze(events="/nonexistent/events")
    with pytest.raises(SourceError, match="cannot read"):
        analyze(events=42)
    with pytest.raises(SourceError, match=r"cannot read the events.*context"):
        analyze(events=events_to_arrow(EVENTS).drop_columns(["context"]))
    with pytest.raises(SourceError, match=r"cannot read the exposures.*variant"):
        analyze(exposures=exposures_table(EXPOSURES).drop_columns(["variant"]))
    with pytest.raises(SourceError, match=r"exposures lack \['items'\]"):
        analyze(exposures=exposures_table(EXPOSURES).drop_columns(["items"]))


def test_distinct_per_row_short_and_long_lists() -> None:
    codes = np.array([1, 1, 2, 5, 5, 5, 7])
    assert list(distinct_per_row(codes, np.array([3, 0, 1, 3]))) == [2, 0, 1, 2]
    long = np.arange(300) % 7  # past the padded grid: sorted instead
    assert list(distinct_per_row(long, np.array([150, 0, 150]))) == [7, 0, 7]


def _same_as_in_memory(data) -> None:
    expected = analyze()
    assert data.exposed_users == expected.exposed_users
    for name in ("click_through", "conversion", "play_time", "skip_rate", "session_length"):
        for field in ("numerator", "denominator", "pre_numerator", "pre_denominator"):
            assert values(data, name, field) == values(expected, name, field), (name, field)


@pytest.fixture(params=["embedded", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        # Small thresholds: the events cross the tail, Parquet segments and a merge.
        return f"embedded://{tmp_path / 'db'}?segment_rows=5&compact_rows=8&max_small_segments=2"
    return request.getfixturevalue("postgres_url")


def test_events_from_the_event_store_and_its_export(store_url: str, tmp_path: Path) -> None:
    with open_database(store_url) as database:
        for start in range(0, len(EVENTS), 4):
            database.events.append(EVENTS[start : start + 4])
        read: list[tuple[datetime, datetime]] = []

        def from_store(since: datetime, until: datetime) -> pa.RecordBatchReader:
            read.append((since, until))
            return events_reader(database.events, since, until, batch_size=3)

        _same_as_in_memory(analyze(events=from_store))
        # The first exposure (1 h) less the 7-day pre-period, to now.
        assert read == [(at(1) - timedelta(days=7), NOW)]
        export_events(database.events, str(tmp_path / "export"))
    _same_as_in_memory(analyze(events=tmp_path / "export"))


def test_exposures_kept_in_postgresql(postgres_url: str) -> None:
    """An exposure log in a PostgreSQL table, read back through ``scan(since, until)``."""
    table = exposures_table(EXPOSURES)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE exposures (list_id text PRIMARY KEY, served_at timestamptz NOT NULL,"
            " experiment text, variant text, user_id text, session_id text, items text[],"
            " model_version text, latency_ms double precision, degraded boolean)"
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO exposures VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [tuple(row.values()) for row in table.to_pylist()],
            )

    def scan(since: datetime, until: datetime) -> pa.Table:
        with psycopg.connect(postgres_url) as connection:
            rows = connection.execute(
                "SELECT * FROM exposures WHERE served_at >= %s AND served_at < %s",
                (since, until),
            ).fetchall()
        columns = dict(zip(EXPOSURE_SCHEMA.names, zip(*rows, strict=True), strict=True))
        return pa.Table.from_pydict({k: list(v) for k, v in columns.items()}, EXPOSURE_SCHEMA)

    _same_as_in_memory(analyze(exposures=scan))
