"""``tastebud jobs`` and ``tastebud scheduler`` end to end on the embedded default: a
synthetic world is ingested, trending finds its injected trend and publishes it, and bad
input gets clear messages and exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.jobs.outputs import read_published
from tastebud.observability import metrics
from tastebud.stores import open_stores

runner = CliRunner()
JOBS = [
    "popularity",
    "affinity",
    "train",
    "embed",
    "index",
    "materialize",
    "backfill",
    "dlq-retry",
    "trending",
    "recommendations",
    "push",
    "quality",
    "monitor",
    "retrain",
    "guardrails",
    "rollout",
    "exposures-compact",
    "feature-parity",
]
AS_OF = "2025-01-13T00:00:00Z"  # the end of the world; i000058 trends on its last day


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures logging onto the runner's captured stderr, which is closed after
    each invoke: put back whatever configuration the tests had before."""
    before = structlog.get_config()
    yield
    structlog.configure(**before)


@pytest.fixture
def ingested(home: Path, tmp_path: Path) -> Path:
    world = tmp_path / "world"
    generate_world(WorldSpec(users=800, items=200, days=12, seed=0, trending_items=4), world)
    result = runner.invoke(app, ["ingest", str(world)])
    assert result.exit_code == 0, result.output
    return world


@pytest.mark.parametrize(
    "command", [["jobs"], ["jobs", "list"], ["jobs", "run"], ["jobs", "history"], ["scheduler"]]
)
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_list_shows_every_job(home: Path) -> None:
    result = runner.invoke(app, ["jobs", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["name"] for row in rows] == JOBS
    assert all(row["available"] for row in rows)
    table = runner.invoke(app, ["jobs", "list"], terminal_width=200)
    assert "index" in table.output and "dlq-retry" in table.output


def test_unknown_jobs_and_bad_intervals(home: Path) -> None:
    unknown = runner.invoke(app, ["jobs", "run", "nope"])
    assert unknown.exit_code == 2 and "unknown job" in unknown.output
    reversed_ = runner.invoke(
        app,
        ["jobs", "run", "popularity", "--start", "2025-01-02T00:00Z", "--end", "2025-01-01T00:00Z"],
    )
    assert reversed_.exit_code == 2 and "not before its end" in reversed_.output
    future = runner.invoke(
        app,
        ["jobs", "run", "popularity", "--start", "2099-01-01T00:00Z", "--end", "2099-01-02T00:00Z"],
    )
    assert future.exit_code == 2 and "in the future" in future.output
    garbage = runner.invoke(app, ["jobs", "run", "popularity", "--end", "yesterday"])
    assert garbage.exit_code == 2 and "--end" in garbage.output


def test_train_registers_promotes_reuses_and_gates(
    ingested: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASTEBUD_JOBS__TRAIN_AUTO", "false")
    first = runner.invoke(app, ["jobs", "run", "train", "--end", AS_OF, "--json"])
    assert first.exit_code == 0, first.output
    output = json.loads(first.output)["output"]
    assert output["promoted"] is True and "gate" not in output
    production = json.loads(runner.invoke(app, ["models", "show", "production"]).stdout)
    assert production["model_version"] == output["version"]

    again = runner.invoke(app, ["jobs", "run", "train", "--end", AS_OF, "--json"])
    assert json.loads(again.output)["output"] == {"version": output["version"], "reused": True}

    # A candidate recipe far worse than production's (plain popularity) is registered, not
    # promoted: the gate fits both recipes on the same data and compares NDCG@10.
    from tastebud.jobs.definitions import train as train_job
    from tastebud.training.configuration import Configuration

    real_train = train_job.train

    def worse(log, **options):
        options.pop("auto", None)
        return real_train(log, configuration=Configuration({}, "popularity", {}), **options)

    monkeypatch.setattr(train_job, "train", worse)
    gated = runner.invoke(app, ["jobs", "run", "train", "--end", "2025-01-12T00:00:00Z", "--json"])
    assert gated.exit_code == 0, gated.output
    result = json.loads(gated.output)["output"]
    assert result["promoted"] is False
    assert result["gate"]["candidate"] < result["gate"]["production"]
    still = json.loads(runner.invoke(app, ["models", "show", "production"]).stdout)
    assert still["model_version"] == output["version"]
    # The gate's figures are the version's metrics, and `models list` shows them.
    candidate = json.loads(runner.invoke(app, ["models", "show", result["version"]]).stdout)
    gate = result["gate"]
    assert candidate["metrics"]["cf.gate.candidate.ndcg@10"] == pytest.approx(gate["candidate"])
    assert candidate["metrics"]["cf.gate.production.ndcg@10"] == pytest.approx(gate["production"])
    listed = runner.invoke(app, ["models", "list"], terminal_width=140).output
    line = next(line for line in listed.splitlines() if result["version"] in line)
    assert f"{gate['candidate']:.3f}/{gate['production']:.3f}" in line


def test_trending_end_to_end(ingested: Path) -> None:
    result = runner.invoke(app, ["jobs", "run", "trending", "--end", AS_OF, "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["status"] == "succeeded" and outcome["output"]["trending"] >= 1
    final = metrics.registry.get_sample_value("tastebud_trending_items_final_count")
    candidates = metrics.registry.get_sample_value("tastebud_trending_items_candidate_count")
    assert final == outcome["output"]["trending"]
    assert candidates == outcome["output"]["candidates"] >= final
    assert metrics.registry.get_sample_value("tastebud_trending_job_duration_seconds_count")
    with open_stores(load_settings()) as stores:
        published = read_published(stores.online, "trending")
        assert published is not None and published["as_of"] == "2025-01-13T00:00:00+00:00"
        assert "i000058" in [entry["item_id"] for entry in published["items"]]
        assert stores.artifacts.exists("trending/20250113T000000Z.parquet")

    # Half a day after the last event the freshness guard refuses to publish (exit 5).
    stale = runner.invoke(app, ["jobs", "run", "trending", "--end", "2025-01-13T12:00:00Z"])
    assert stale.exit_code == 5 and "events are not arriving" in stale.output
    assert "refused" in stale.output and "keeps serving" in stale.output

    # Before the world began: an empty window, nothing published, the list stays.
    empty = runner.invoke(app, ["jobs", "run", "trending", "--end", "2024-06-01T00:00:00Z"])
    assert empty.exit_code == 5 and "no engagement between" in empty.output

    popularity = runner.invoke(
        app, ["jobs", "run", "popularity", "--start", "2025-01-12T23:55Z", "--end", AS_OF]
    )
    assert popularity.exit_code == 0, popularity.output

    with open_stores(load_settings()) as stores:
        kept = read_published(stores.online, "trending")
        assert kept is not None and kept["as_of"] == published["as_of"]

    history = json.loads(runner.invoke(app, ["jobs", "history", "--json"]).output)
    assert [(r["job_name"], r["status"], r["error_kind"]) for r in history] == [
        ("popularity", "succeeded", None),
        ("trending", "refused", "empty_window"),
        ("trending", "refused", "stale_data"),
        ("trending", "succeeded", None),
    ]
    only = json.loads(
        runner.invoke(
            app, ["jobs", "history", "--job", "trending", "--status", "refused", "--json"]
        ).output
    )
    assert [r["error_kind"] for r in only] == ["empty_window", "stale_data"]
    assert "events are not arriving" in only[1]["error"]
    table = runner.invoke(app, ["jobs", "history"])
    assert table.exit_code == 0 and "job runs" in table.output


def test_scheduler_once_runs_due_jobs(home: Path) -> None:
    # An empty store: the job runs, is refused with "no events", is recorded, and the command
    # ends; a second pass waits for new events rather than repeat the refusal.
    result = runner.invoke(app, ["scheduler", "--once", "--job", "popularity"])
    assert result.exit_code == 0, result.output
    assert "popularity: refused" in result.output and "no events between" in result.output
    history = json.loads(runner.invoke(app, ["jobs", "history", "--json"]).output)
    assert [(r["job_name"], r["error_kind"]) for r in history] == [("popularity", "empty_window")]
    again = runner.invoke(app, ["scheduler", "--once", "--job", "popularity"])
    assert again.exit_code == 0 and "popularity" not in again.output
    assert len(json.loads(runner.invoke(app, ["jobs", "history", "--json"]).output)) == 1
    bad = runner.invoke(app, ["scheduler", "--once", "--job", "nope"])
    assert bad.exit_code == 2 and "unknown job" in bad.output
