"""``tastebud recommend --alias``: the list HTTP serves, from the same pipeline and state.

The case that showed it: a user played an item over HTTP; ``recommend --model production``
still recommended it, with the model's raw scores, where HTTP gave another list."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

from api.gateway_testing import TestClient, make_keys
from serving_world import build_world
from typer.testing import CliRunner

from tastebud.api.app import create_app
from tastebud.cli.main import app

runner = CliRunner()
K = 5


def read_lists(path: Path) -> dict[str, list[dict[str, str]]]:
    lists: dict[str, list[dict[str, str]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            lists.setdefault(row["user_id"], []).append(row)
    return lists


def test_alias_ranks_as_http_does_and_model_gives_the_raw_ranking(home: Path) -> None:
    world = build_world(home, online_url=None)  # the shared SQLite online store
    keys = make_keys(world.stores.database)
    users = home / "users.txt"
    users.write_text("user_id\nu0\nu1\nstranger\n")
    try:
        with TestClient(create_app(world.settings), raise_server_exceptions=True) as http:
            read = {"X-API-Key": keys["read"]}
            before = http.get(f"/v1/users/u0/recommendations?k={K}", headers=read).json()
            played = before["items"][0]["item_id"]
            event = {
                "user_id": "u0",
                "item_id": played,
                "event_type": "play",
                "value": 200,
                "timestamp": datetime.now(UTC).isoformat(),
            }
            posted = http.post("/v1/events", json=event, headers={"X-API-Key": keys["ingest"]})
            assert posted.status_code == 202, posted.text
            served = {
                user: http.get(f"/v1/users/{user}/recommendations?k={K}", headers=read).json()
                for user in ("u0", "u1", "stranger")
            }
    finally:
        world.stores.close()
    assert played not in [item["item_id"] for item in served["u0"]["items"]]

    out = home / "served.csv"
    args = ["recommend", "--alias", "production", "--users", str(users), "--k", str(K)]
    result = runner.invoke(app, [*args, "--out", str(out), "--explain"])
    assert result.exit_code == 0, result.output
    lists = read_lists(out)
    for user, document in served.items():
        rows = lists[user]
        assert [row["item_id"] for row in rows] == [i["item_id"] for i in document["items"]]
        for row, item in zip(rows, document["items"], strict=True):
            assert abs(float(row["score"]) - item["score"]) < 1e-5
            assert row["explanation"] == (item["explanation"] or "")
    assert all(0.0 <= float(row["score"]) <= 1.5 for rows in lists.values() for row in rows)

    raw = home / "raw.csv"
    result = runner.invoke(
        app, ["recommend", "--model", "production", "--users", str(users), "--out", str(raw)]
    )
    assert result.exit_code == 0, result.output
    # The raw model knows nothing of the play: it still ranks the played item first.
    assert read_lists(raw)["u0"][0]["item_id"] == played


def test_alias_and_model_are_explained_and_exclusive(home: Path) -> None:
    shown = runner.invoke(app, ["recommend", "--help"])
    assert shown.exit_code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", shown.output).split())  # rich's boxes unwrapped
    assert "--alias" in text and "serving pipeline" in text
    assert "--model" in text and "raw scores" in text
    users = home.parent / "u.txt"
    users.write_text("u1\n")
    both = runner.invoke(
        app, ["recommend", "--alias", "production", "--model", "m", "--users", str(users)]
    )
    assert both.exit_code == 2 and "either --alias" in both.output
    neither = runner.invoke(app, ["recommend", "--users", str(users)])
    assert neither.exit_code == 2
    unknown = runner.invoke(app, ["recommend", "--alias", "staging", "--users", str(users)])
    assert unknown.exit_code == 2 and "unknown alias" in unknown.output
    empty = runner.invoke(app, ["recommend", "--alias", "production", "--users", str(users)])
    assert empty.exit_code == 1 and "no model behind alias" in empty.output
    assert not (home.parent / "recommendations.csv.partial").exists()
