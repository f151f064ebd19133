"""``tastebud quickstart`` (``make run``) end to end on bounded worlds: a world that ends now,
the jobs over its own time, two users and trending as HTTP serves them, later runs that
reuse the world (days later too), refusals to mix worlds, and the foreground server
(started in a subprocess, hit with the printed curl, stopped with SIGINT)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.jobs.outputs import read_published
from tastebud.ranking.precomputed import precomputed_key
from tastebud.schemas import Event
from tastebud.stores import open_stores

runner = CliRunner()
SMALL = ["--users", "80", "--items", "90", "--days", "5", "--no-serve"]


def _stats() -> dict:
    return json.loads(runner.invoke(app, ["stats", "--json"]).stdout)


def test_quickstart_builds_a_world_that_ends_now_and_shows_what_serving_answers(
    home: Path,
) -> None:
    before = datetime.now(UTC)
    result = runner.invoke(app, ["quickstart", *SMALL], terminal_width=200)
    assert result.exit_code == 0, result.output
    output = result.output
    assert "7/7" not in output  # --no-serve stops before serving
    stats = _stats()
    assert stats["items"]["catalog"] == 90 and stats["users"]["catalog"] == 80
    # The world ends at the current minute: its newest event is hours old, not months.
    truth = json.loads((home / "worlds" / "quickstart-0" / "truth.json").read_text())
    end = datetime.fromisoformat(truth["period"]["end"])
    assert before - timedelta(minutes=1) <= end <= datetime.now(UTC)
    last = datetime.fromisoformat(stats["events"]["last"])
    assert end - timedelta(hours=6) < last < end
    assert "as of now" in output and "as production" in output
    for job in ("popularity:", "trending:", "affinity:", "materialize:", "recommendations:"):
        assert job in output, job
    assert "refused" not in output and "failed" not in output
    # Two real users, their last items and their recommendations, with titles and reasons.
    assert output.count("last items:") == 2 and output.count("recommended for") == 2
    assert "1. " in output and " — " in output and "· creator-" in output
    assert "trending (as of" in output
    # The closing hint names a users file that exists and works, and how to reach tastebud.
    users_file = home / "worlds" / "quickstart-0" / "users.txt"
    assert f"--users {users_file}" in output
    users = users_file.read_text().split()
    assert users[0] == "user_id" and len(users) > 3
    recs = runner.invoke(
        app,
        ["recommend", "--model", "production", "--users", str(users_file), "--out", "r.csv"],
    )
    assert recs.exit_code == 0, recs.output
    with open_stores(load_settings()) as stores:
        popular = read_published(stores.online, "popularity")
        assert popular is not None and len(popular["items"]) >= 50
        assert stores.online.get(precomputed_key(users[1])) is not None

    # Again: the same world (no new events), nothing retrained, the same users shown.
    again = runner.invoke(app, ["quickstart", *SMALL], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "already stored" in again.output and "is up to date" in again.output
    assert _stats()["events"]["total"] == stats["events"]["total"]
    assert len(json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)) == 1


def test_a_world_in_the_past_runs_as_of_its_own_time(home: Path) -> None:
    """What re-running ``make run`` days later meets: the recorded world ends in the past, so
    the store is historical and every job runs as of its newest event: full popular
    lists, a trending list (or why it is empty), features."""
    end = (datetime.now(UTC) - timedelta(days=40)).replace(second=0, microsecond=0)
    args = ["quickstart", *SMALL]
    first = runner.invoke(app, [*args, "--end", end.isoformat()], terminal_width=200)
    assert first.exit_code == 0, first.output
    assert "the store is historical" in first.output
    assert "refused" not in first.output and "failed" not in first.output
    # Later runs reuse the recorded end without being told.
    later = runner.invoke(app, args, terminal_width=200)
    assert later.exit_code == 0, later.output
    assert f"ends {end.isoformat()}, 40 days ago" in later.output
    assert "already stored" in later.output and "the store is historical" in later.output
    with open_stores(load_settings()) as stores:
        popular = read_published(stores.online, "popularity")
        assert popular is not None and len(popular["items"]) >= 50
        assert datetime.fromisoformat(popular["as_of"]) < end
        trending = read_published(stores.online, "trending")
        assert trending is not None and (trending["items"] or trending.get("note"))
    user = (home / "worlds" / "quickstart-0" / "users.txt").read_text().split()[1]
    features = runner.invoke(app, ["features", "get", "user_engagement:events_30d", "--user", user])
    values = json.loads(features.stdout)["values"]["user"][user]
    assert values["user_engagement:events_30d"] > 0
    # The wall clock sees nothing in the last 30 days of this store: refused, values kept.
    wall = runner.invoke(app, ["jobs", "run", "materialize", "--end", _tick(), "--json"])
    assert wall.exit_code == 5, wall.output
    assert json.loads(wall.stdout)["status"] == "refused"
    still = json.loads(
        runner.invoke(app, ["features", "get", "user_engagement:events_30d", "--user", user]).stdout
    )
    assert still["values"]["user"][user] == values


def _tick() -> str:
    """The newest 10-minute tick (the materialize schedule's) before now."""
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0).isoformat()


def test_quickstart_refuses_to_mix_a_second_world_in(home: Path) -> None:
    assert runner.invoke(app, ["quickstart", *SMALL]).exit_code == 0
    total = _stats()["events"]["total"]
    other = runner.invoke(app, ["quickstart", "--users", "81", *SMALL[2:]])
    assert other.exit_code == 2
    assert "already holds the quickstart world" in other.output
    assert "Traceback" not in other.output
    moved = runner.invoke(app, ["quickstart", *SMALL, "--end", "2026-01-01T00:00Z"])
    assert moved.exit_code == 2 and "ending elsewhere" in moved.output
    assert _stats()["events"]["total"] == total


def test_a_store_of_an_earlier_quickstart_is_used_as_it_is(home: Path) -> None:
    """Before worlds ended now, quickstart stored ``syn0-…`` events dated 2025: such a store
    is used as a historical store, with a note, and nothing is mixed into it."""
    with open_stores(load_settings()) as stores:
        stores.events.append(
            [
                Event(
                    event_id=f"syn0-{n:010d}",
                    user_id=f"u{n % 7}",
                    item_id=f"i{n % 11}",
                    event_type="play",
                    timestamp=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
                )
                for n in range(300)
            ]
        )
    result = runner.invoke(app, ["quickstart", *SMALL], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "quickstart world of an earlier tastebud" in result.output
    assert _stats()["events"]["total"] == 300
    assert "the store is historical" in result.output


def test_make_run_serves_in_the_foreground_until_ctrl_c(home: Path) -> None:
    """The serving step in a real process: the printed curl works at once, the dashboard
    answers, SIGINT stops the server, the dashboard and the scheduler cleanly (exit 0)."""
    environment = {**os.environ, "TASTEBUD_HOME": str(home)}
    command = [sys.executable, "-m", "tastebud", "quickstart", *SMALL[:-1], "--port", "0"]
    child = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            if line.startswith("try: curl"):
                break
        output = "".join(lines)
        assert "7/7 serving this world" in output, output
        assert "serving http://127.0.0.1:" in output and "read key: tb_" in output
        curl = shlex.split(lines[-1].removeprefix("try: "))
        answer = subprocess.run(curl, capture_output=True, text=True, timeout=30, check=True)
        document = json.loads(answer.stdout)
        assert len(document["items"]) == 5 and document["segment"] == "warm"
        assert document["user_id"] in output
        # The dashboard and the scheduler run beside it; the server's GET / links the first.
        dashboard = next(line.split()[1] for line in lines if line.startswith("dashboard "))
        assert dashboard.endswith(f"/?user={document['user_id']}")
        dashboard = dashboard.split("/?")[0]
        assert httpx.get(f"{dashboard}/_stcore/health", timeout=10).text == "ok"
        server = curl[-1].split("/v1/")[0]
        assert f'href="{dashboard}"' in httpx.get(f"{server}/", timeout=10).text
        assert "scheduler running" in output
        child.send_signal(signal.SIGINT)
        rest, _ = child.communicate(timeout=60)
        with pytest.raises(httpx.TransportError):  # Ctrl-C stopped the dashboard too
            httpx.get(f"{dashboard}/_stcore/health", timeout=5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, rest
    assert rest.strip().endswith("stopped")
