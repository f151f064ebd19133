"""A store whose data ends years ago (MovieLens, dated 1997-98 and 1996-2018): jobs and
features run as of its newest event and give useful answers (full popular lists, features,
a trending list that is empty and says why), while the wall clock's runs are refused, keep
those answers, and are not repeated by the scheduler. Skipped without the dataset copies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.jobs.outputs import read_published
from tastebud.ranking.recommender import RecommendationService
from tastebud.schemas import Event
from tastebud.stores import EventQuery, open_stores
from tastebud.trending.lists import trending_items

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    before = structlog.get_config()
    yield
    structlog.configure(**before)


def _run(*args: str) -> tuple[int, dict, str]:
    result = runner.invoke(app, ["jobs", "run", *args, "--json"])
    return result.exit_code, json.loads(result.stdout), result.output


def test_movielens_100k_runs_as_of_its_newest_event(home: Path, movielens_dir: Path) -> None:
    ingest = runner.invoke(app, ["ingest", str(movielens_dir / "ml-100k")])
    assert ingest.exit_code == 0, ingest.output
    note = runner.invoke(app, ["jobs", "run", "popularity"])
    assert note.exit_code == 0, note.output
    assert "the store is historical (newest event 1998-04-22T23:10:38" in note.output

    code, popularity, _ = _run("popularity")
    assert code == 0 and popularity["end"].startswith("1998-04-22 23:10")
    code, trending, _ = _run("trending")
    assert code == 0 and trending["output"]["trending"] == 0
    assert trending["output"]["note"].startswith("nothing is trending")
    code, materialized, _ = _run("materialize")
    assert code == 0, materialized

    with open_stores(load_settings()) as stores:
        popular = read_published(stores.online, "popularity")
        assert popular is not None and len(popular["items"]) == 100
        assert popular["as_of"].startswith("1998-04-22")
        listed = trending_items(stores.online)
        assert listed.items == [] and listed.note and "nothing is trending" in listed.note
        service = RecommendationService(load_settings(), stores)
        service.start(watch=False)
        assert len(service.popular(None, 50)[0]) == 50
        assert len(service.popular(None, 200)[0]) == 200  # filled from the catalog
        newest = stores.events.read_arrow(EventQuery(order="desc", limit=1))
        user = newest.column("user_id")[0].as_py()

    best = popular["items"][0]["item_id"]
    features = runner.invoke(
        app, ["features", "get", "item_popularity:*", "user_engagement:*", "--item", best,
              "--user", user],
    )  # fmt: skip
    values = json.loads(features.stdout)["values"]
    assert values["item"][best]["item_popularity:popularity_rank"] == 1
    assert values["user"][user]["user_engagement:events_30d"] > 0  # active in April 1998

    # The wall clock's runs find nothing: refused (exit 5), the answers above kept, and the
    # message names the --as-of that works.
    now = datetime.now(UTC)
    tick = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    earlier = tick - timedelta(minutes=5)  # so the scheduler has a newer interval due
    code, refused, _ = _run("popularity", "--end", earlier.isoformat())
    assert code == 5 and refused["status"] == "refused"
    assert "--as-of 1998-04-22T23:10:38+00:00" in refused["error"]
    with open_stores(load_settings()) as stores:
        assert read_published(stores.online, "popularity") == popular

    # The scheduler (wall clock) waits: that refusal saw this very store. One new event
    # (a user trying the API) moves it: one run, refused again (one event does not make a
    # one-item list), then it waits again; the 1998 list keeps serving throughout.
    assert (
        "popularity"
        not in runner.invoke(app, ["scheduler", "--once", "--job", "popularity"]).output
    )
    with open_stores(load_settings()) as stores:
        stores.events.append(
            [
                Event(
                    event_id="try-1",
                    user_id="1",
                    item_id=best,
                    event_type="play",
                    timestamp=earlier - timedelta(minutes=1),
                )
            ]
        )
    moved = runner.invoke(app, ["scheduler", "--once", "--job", "popularity"])
    assert "popularity: refused" in moved.output and "1 events" in moved.output
    again = runner.invoke(app, ["scheduler", "--once", "--job", "popularity"])
    assert again.exit_code == 0 and "popularity" not in again.output
    with open_stores(load_settings()) as stores:
        assert read_published(stores.online, "popularity") == popular


def test_a_sparse_history_explains_an_empty_trending_list(home: Path, movielens_dir: Path) -> None:
    """ml-latest-small rates a few movies a day by 2018: too little for trending, refused
    with the reason, which is what GET /v1/trending then says (not a 404)."""
    ingest = runner.invoke(app, ["ingest", str(movielens_dir / "ml-latest-small")])
    assert ingest.exit_code == 0, ingest.output
    code, refused, _ = _run("trending")
    assert code == 5 and refused["status"] == "refused"
    assert refused["output"]["placeholder_published"] is True
    with open_stores(load_settings()) as stores:
        listed = trending_items(stores.online)
    assert listed.items == [] and listed.note == refused["error"]
    code, popularity, _ = _run("popularity")
    assert code == 0 and popularity["output"]["items"] > 100
