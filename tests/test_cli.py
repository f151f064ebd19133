"""The tastebud command, end to end on the embedded default and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.stores import open_database

runner = CliRunner()

COMMANDS = [
    [],
    ["ingest"],
    ["stats"],
    ["quickstart"],
    ["config"],
    ["config", "show"],
    ["datasets"],
    ["datasets", "list"],
    ["datasets", "fetch"],
    ["datasets", "generate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "tastebud")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


BAD_FILE = (
    "user_id,item_id,event_type,timestamp\n"
    "u1,i1,play,2024-05-01T10:00:00Z\n"
    "u2,i2,warp,2024-05-01T10:00:00Z\n"
    "u3,i3\n"
)


def test_ingest_reports_rejections_and_strict_sets_the_exit_code(
    home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(BAD_FILE)
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert "line 3: unknown_event_type" in result.output
    assert "line 4: malformed_row" in result.output
    strict = runner.invoke(app, ["ingest", str(path), "--strict", "--json"])
    assert strict.exit_code == 1
    report = json.loads(strict.stdout)
    assert report["totals"] == {"rows_read": 3, "stored": 0, "duplicates": 1, "rejected": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "nowhere.csv"], "does not exist"),
        (["ingest", "x.csv", "--kind", "songs"], "--kind must be one of"),
        (["ingest", "x.csv", "--event-type", "teleport"], "not configured"),
        (["ingest", "x.csv", "--map", "user_id"], "target=source"),
        (["ingest", "x.csv", "--default-timestamp", "soon"], "timestamp"),
        (["datasets", "fetch", "ml-99k"], "unknown dataset"),
    ],
)
def test_usage_errors_are_clear(home: Path, args: list[str], message: str) -> None:
    Path("x.csv").write_text("user_id,item_id\nu,i\n")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output.lower() or message in result.output
    assert "Traceback" not in result.output


def test_unreachable_database_is_a_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TASTEBUD_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    )
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 3
    assert "unreachable" in result.output and "Traceback" not in result.output


def test_config_show(home: Path) -> None:
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["resolved"]["database_url"].startswith("embedded://")


def test_server_mode_on_postgres(
    home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASTEBUD_DATABASE_URL", postgres_url)
    args = ["quickstart", "--users", "30", "--items", "40", "--days", "2", "--no-serve"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # Two days are too short a history to judge trends: said, and the rest goes on.
    assert "trending refused" in result.output and "a baseline needs events" in result.output
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert stats["items"]["catalog"] == 40 and stats["events"]["total"] > 100


def test_interrupted_ingest_can_be_rerun_without_duplicates(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("user_id,item_id,event_type,timestamp\n")
        for n in range(200_000):
            handle.write(f"u{n % 997},i{n % 1499},play,{1714557600 + n}\n")
    environment = {**os.environ, "TASTEBUD_INGEST__BATCH_SIZE": "2000"}
    command = [sys.executable, "-m", "tastebud", "ingest", str(path)]
    child = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    settings = load_settings()
    database = open_database(settings.resolved_database_url)
    events = database.events
    deadline = time.monotonic() + 60
    while events.count() < 10_000 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    partial = events.count()
    assert 0 < partial < 200_000, "the ingest should be cut off part-way"
    result = runner.invoke(app, ["ingest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)["totals"]
    assert totals["stored"] + totals["duplicates"] == 200_000
    assert totals["duplicates"] == partial
    assert events.count() == 200_000
    database.close()
