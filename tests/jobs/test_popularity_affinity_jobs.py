"""The popularity and affinity jobs on real stores: exact scores, versioned outputs,
published lists, and the bad-input rules (empty and too-thin windows are refused and keep
the previous list, failures, backfills, fills from longer windows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import job_fixtures
import pytest

from tastebud.config import Settings
from tastebud.jobs import JobFailed, JobRegistry, JobRunner, RetryPolicy, RunHistory
from tastebud.jobs.definitions import build_registry
from tastebud.jobs.outputs import read_published, read_version
from tastebud.schemas import Event, Item
from tastebud.stores import Stores

# The shared fixtures (a conftest.py here would clash with the other test folders').
history, settings, stores = job_fixtures.history, job_fixtures.settings, job_fixtures.stores

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
END = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
START = END - timedelta(minutes=5)
SECOND = 1 / 86_400


def _event(n: int, user: str, item: str, kind: str, days_ago: float) -> Event:
    return Event(
        event_id=f"e{n}",
        user_id=user,
        item_id=item,
        event_type=kind,
        value=4.0 if kind == "rating" else None,
        timestamp=END - timedelta(days=days_ago),
    )


@pytest.fixture
def world(stores: Stores) -> Stores:
    stores.catalog.upsert_items(
        [
            Item(item_id="i1", categories=["rock"]),
            Item(item_id="i2", categories=["rock", "jazz"]),
            Item(item_id="i3", categories=["jazz"], active=False),
        ]
    )
    stores.events.append(
        [
            _event(1, "u1", "i1", "play", SECOND),  # 1.0 x 1
            _event(2, "u2", "i1", "like", 7.0),  # 4.0 x 0.5
            _event(3, "u1", "i2", "purchase", 14.0),  # 5.0 x 0.25
            _event(4, "u2", "i2", "skip", SECOND),  # -0.5
            _event(5, "u1", "i3", "play", 1.0),  # inactive item
            _event(6, "u3", "i4", "view", SECOND),  # 0.5, not in the catalog
            _event(7, "u3", "i1", "dislike", 100.0),  # outside the 90-day window
            _event(8, "u1", "i1", "play", 0.0),  # after the interval's end
        ]
    )
    return stores


def lenient(settings: Settings) -> Settings:
    """The tiny world below has 8 events: exact scores are checked with minimums of 1."""
    jobs = settings.jobs.model_copy(
        update={"popularity_min_events": 1, "popularity_min_items": 1, "affinity_min_events": 1}
    )
    return settings.model_copy(update={"jobs": jobs})


@pytest.fixture
def runner(settings: Settings, history: RunHistory, world: Stores) -> JobRunner:
    registry: JobRegistry = build_registry(RetryPolicy(max_attempts=2, base_seconds=0.001))
    return JobRunner(lenient(settings), registry, history, stores=world, clock=lambda: NOW)


def test_popularity_scores_and_outputs(runner: JobRunner, world: Stores) -> None:
    outcome = runner.run("popularity", START, END)
    assert outcome.status == "succeeded"
    table = read_version(world.artifacts, outcome.output["version"])
    scores = dict(zip(table["item_id"].to_pylist(), table["score"].to_pylist(), strict=True))
    assert scores == pytest.approx(
        {"i1": 3.0, "i2": 0.75, "i3": 2 ** (-1 / 7), "i4": 0.5}, rel=1e-5
    )
    assert table["rank"].to_pylist() == [1, 2, 3, 4]
    assert outcome.output["version"] == "jobs/popularity/20250301T120000Z.parquet"

    everything = read_published(world.online, "popularity")
    assert everything is not None and everything["as_of"] == END.isoformat()
    assert "computed_at" in everything
    # The inactive item is kept in the table but never served.
    assert [e["item_id"] for e in everything["items"]] == ["i1", "i2", "i4"]
    rock = read_published(world.online, "popularity", "rock")
    jazz = read_published(world.online, "popularity", "jazz")
    assert rock is not None and [e["item_id"] for e in rock["items"]] == ["i1", "i2"]
    assert jazz is not None and [e["item_id"] for e in jazz["items"]] == ["i2"]


def test_popularity_is_idempotent_over_its_interval(runner: JobRunner, world: Stores) -> None:
    first = runner.run("popularity", START, END)
    table = read_version(world.artifacts, first.output["version"])
    second = runner.run("popularity", START, END)
    assert read_version(world.artifacts, second.output["version"]).equals(table)
    assert world.artifacts.list("jobs/popularity") == [first.output["version"]]


def test_an_older_interval_never_replaces_a_newer_result(runner: JobRunner, world: Stores) -> None:
    runner.run("popularity", START, END)
    backfill = runner.run("popularity", START - timedelta(days=1), END - timedelta(days=1))
    assert backfill.output["published"] is False
    assert world.artifacts.exists(backfill.output["version"])  # kept as a version
    current = read_published(world.online, "popularity")
    assert current is not None and current["as_of"] == END.isoformat()


def test_an_empty_window_is_refused_and_keeps_the_previous_list(
    runner: JobRunner, world: Stores, history: RunHistory
) -> None:
    runner.run("popularity", START, END)
    before = world.online.get("popularity:*")
    later = END + timedelta(days=200)
    empty = JobRunner(runner.settings, runner.registry, history, stores=world, clock=lambda: later)
    refused = empty.run("popularity", later - timedelta(minutes=5), later)
    assert refused.status == "refused" and refused.attempts == 1
    assert "no events between" in (refused.error or "")
    assert f"the list published as of {END.isoformat()} keeps serving" in (refused.error or "")
    # The store's data ends before the window does: the message names the --as-of to use.
    assert "--as-of 2025-03-01T12:00:00+00:00" in (refused.error or "")
    assert world.online.get("popularity:*") == before
    (row, _) = history.list_runs(job_name="popularity")
    assert (row.status, row.error_kind, row.attempt) == ("refused", "empty_window", 1)
    assert row.output is not None and row.output["serving_as_of"] == END.isoformat()
    assert row.output["data_version"] == world.events.last_seq()


def test_a_thin_window_is_refused_at_the_default_minimums(
    runner: JobRunner, world: Stores, history: RunHistory, settings: Settings
) -> None:
    """One event must not turn the popular list into one item (issue 15): below
    ``popularity_min_events`` the previous list stays, and the history says why."""
    runner.run("popularity", START, END)
    before = world.online.get("popularity:*")
    strict = JobRunner(settings, runner.registry, history, stores=world, clock=lambda: NOW)
    refused = strict.run("popularity", START, END)
    assert refused.status == "refused"
    assert refused.error is not None and "publishing needs at least 50 events" in refused.error
    assert world.online.get("popularity:*") == before
    row = history.list_runs(job_name="popularity", limit=1)[0]
    assert row.error_kind == "insufficient_data"
    assert row.output is not None
    assert {k: row.output[k] for k in ("events", "min_events", "min_items")} == {
        "events": 6,
        "min_events": 50,
        "min_items": 2,  # the active catalog holds 2 items, fewer than the configured 10
    }
    affinity = strict.run("affinity", END - timedelta(days=1), END)
    assert affinity.status == "refused" and "needs at least 50" in (affinity.error or "")
    assert world.online.get("affinity:u1") is None


def test_a_short_list_is_filled_from_a_longer_window_then_all_time(
    runner: JobRunner, world: Stores
) -> None:
    world.events.append(
        [
            _event(20, "u4", "i5", "play", 200.0),  # in the 360-day window only
            _event(21, "u4", "i6", "purchase", 800.0),  # all time only
            _event(22, "u5", "i6", "play", 900.0),
            _event(23, "u5", "i7", "play", 1000.0),
        ]
    )
    outcome = runner.run("popularity", START, END)
    assert outcome.output["filled"] == {"360 days": 1, "all time": 2}
    table = read_version(world.artifacts, outcome.output["version"])
    # The window's ranking first, then each fill in its own order (plain weighted counts).
    assert table["item_id"].to_pylist() == ["i1", "i3", "i2", "i4", "i5", "i6", "i7"]
    assert table["fill"].to_pylist() == [None] * 4 + ["360 days", "all time", "all time"]
    assert table["rank"].to_pylist() == list(range(1, 8))
    published = read_published(world.online, "popularity")
    assert published is not None
    entries = {e["item_id"]: e for e in published["items"]}
    assert entries["i5"]["fill"] == "360 days" and "fill" not in entries["i1"]
    assert [e["rank"] for e in published["items"]] == list(range(1, len(entries) + 1))


def test_a_failure_before_publishing_keeps_the_previous_outputs(
    runner: JobRunner, world: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.run("popularity", START, END)
    before = world.online.get("popularity:*")
    versions = world.artifacts.list("jobs/popularity")

    def broken(*args: object, **kwargs: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr("tastebud.jobs.definitions.popularity.write_version", broken)
    with pytest.raises(JobFailed, match="disk full"):
        runner.run("popularity", START, END)
    assert world.online.get("popularity:*") == before
    assert world.artifacts.list("jobs/popularity") == versions


def test_affinity_shares_per_user(runner: JobRunner, world: Stores) -> None:
    outcome = runner.run("affinity", END - timedelta(days=1), END)
    assert outcome.status == "succeeded" and outcome.output["users"] == 2
    table = read_version(world.artifacts, outcome.output["version"])
    rows = {(r["user_id"], r["category"]): r for r in table.to_pylist()}
    half = 2 ** (-1 / 30)
    # u1: play i1 (rock) 1.0; purchase i2 (rock, jazz) 5 x 2^(-14/30); play i3 (jazz) 1 x 2^(-1/30)
    purchase = 5.0 * 2 ** (-14 / 30)
    assert rows[("u1", "rock")]["score"] == pytest.approx(1.0 + purchase, abs=1e-5)
    assert rows[("u1", "jazz")]["score"] == pytest.approx(purchase + half, abs=1e-5)
    total = 2 * purchase + 1.0 + half
    assert rows[("u1", "rock")]["share"] == pytest.approx((1.0 + purchase) / total, abs=1e-5)
    # u2: like i1 (rock) 4 x 2^(-7/30); skip i2 (rock, jazz) -0.5: jazz is negative, dropped
    assert rows[("u2", "rock")]["share"] == pytest.approx(1.0)
    assert ("u2", "jazz") not in rows
    assert ("u3", "rock") not in rows  # u3's only in-window event has no catalog item
    published = json.loads(world.online.get("affinity:u1") or b"{}")
    assert [c["category"] for c in published["categories"]] == ["rock", "jazz"]
    assert published["as_of"] == END.isoformat()
