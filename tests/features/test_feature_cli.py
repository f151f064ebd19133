"""``tastebud features ...`` and the feature jobs, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from event_factories import T0, make_events
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.stores import open_stores

runner = CliRunner()
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    before = structlog.get_config()
    yield
    structlog.configure(**before)


@pytest.fixture
def seeded(home: Path) -> Path:
    base = NOW - timedelta(hours=5)
    with open_stores(load_settings()) as stores:
        stores.events.append(
            [
                e.model_copy(update={"timestamp": base + (e.timestamp - T0)})
                for e in make_events(100)
            ]
        )
    return home


def test_list_and_describe(home: Path) -> None:
    listed = runner.invoke(app, ["features", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    names = {row["view"] for row in json.loads(listed.output)}
    assert {"item_popularity", "user_engagement", "item_content_embedding"} <= names
    described = runner.invoke(app, ["features", "describe", "user_engagement"])
    assert described.exit_code == 0
    document = json.loads(described.output)
    assert document["fingerprint"] and document["manifest"].endswith("user_engagement.yaml")
    unknown = runner.invoke(app, ["features", "describe", "nope"])
    assert unknown.exit_code == 2 and "unknown feature view" in unknown.output


def test_bad_manifest_is_a_usage_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad-Name\n")
    monkeypatch.setenv("TASTEBUD_FEATURES__MANIFESTS", json.dumps([str(bad)]))
    result = runner.invoke(app, ["features", "list"], terminal_width=300)
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "bad.yaml: field name: String should match pattern '^[a-z]" in output


def test_materialize_get_parity_and_the_jobs(seeded: Path) -> None:
    end = (NOW - timedelta(minutes=30)).isoformat()
    done = runner.invoke(
        app, ["features", "materialize", "--end", end, "--view", "user_engagement"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["user_engagement"]["published"] == 5
    got = runner.invoke(app, ["features", "get", "user_engagement:events_30d", "--user", "u1"])
    assert json.loads(got.output)["values"]["user"]["u1"]["user_engagement:events_30d"] == 20
    parity = runner.invoke(app, ["features", "parity", "--view", "user_engagement"])
    assert parity.exit_code == 0, parity.output
    assert json.loads(parity.output)["diff_rate"] == 0.0
    bad_view = runner.invoke(app, ["features", "materialize", "--view", "ghost"])
    assert bad_view.exit_code == 2 and "ghost" in bad_view.output
    job = runner.invoke(app, ["jobs", "run", "materialize", "--json"])
    assert job.exit_code == 0, job.output
    outcome = json.loads(job.output)
    assert outcome["output"]["views"]["user_engagement"]["published"] == 5
    check = runner.invoke(app, ["jobs", "run", "feature-parity", "--json"])
    assert check.exit_code == 0, check.output
    assert json.loads(check.output)["output"]["diff_rate"] == 0.0
    status = runner.invoke(app, ["features", "status"])
    assert status.exit_code == 0
    assert json.loads(status.output)["user_engagement"]["freshness_seconds"] < 3600


def test_backfill_command_and_job(seeded: Path) -> None:
    start = (NOW - timedelta(hours=4)).isoformat()
    end = (NOW - timedelta(hours=1)).isoformat()
    done = runner.invoke(
        app,
        [
            *("features", "backfill", "--start", start, "--end", end),
            *("--step-hours", "1", "--view", "user_engagement"),
        ],
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"snapshots": 3, "rows": {"user_engagement": 15}}
    job = runner.invoke(app, ["jobs", "run", "backfill", "--start", start, "--end", end, "--json"])
    assert job.exit_code == 0, job.output
    assert json.loads(job.output)["output"]["snapshots"] == 1  # step: 24 h by default
