"""``tastebud export events`` and ``tastebud jobs run NAME --engine``: end to end through
the CLI on the embedded default, and their usage errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
import structlog
from conftest import SPARK_MASTER
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.engines import engine_name
from tastebud.jobs.outputs import read_published

runner = CliRunner()
AS_OF = "2025-01-13T00:00:00Z"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    before = structlog.get_config()
    yield
    structlog.configure(**before)


@pytest.fixture
def ingested(home: Path, world_dir: Path) -> Path:
    result = runner.invoke(app, ["ingest", str(world_dir)])
    assert result.exit_code == 0, result.output
    return world_dir


def test_export_events_by_day(ingested: Path, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    result = runner.invoke(
        app,
        ["export", "events", "--since", "2025-01-10T00:00Z", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert sorted(report["days"]) == ["2025-01-10", "2025-01-11", "2025-01-12"]
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == report["rows"] > 0
    text = runner.invoke(app, ["export", "events", "--out", str(tmp_path / "all")])
    assert text.exit_code == 0 and "12 day partition(s)" in text.output


def test_export_usage_errors(home: Path, tmp_path: Path) -> None:
    reversed_ = runner.invoke(
        app,
        [
            "export",
            "events",
            "--out",
            str(tmp_path),
            "--since",
            "2025-01-02",
            "--until",
            "2025-01-01",
        ],
    )
    assert reversed_.exit_code == 2 and "--since must be before --until" in reversed_.output
    garbage = runner.invoke(app, ["export", "events", "--out", str(tmp_path), "--since", "soon"])
    assert garbage.exit_code == 2 and "--since" in garbage.output
    missing = runner.invoke(app, ["export", "events"])
    assert missing.exit_code == 2 and "--out" in missing.output
    # A URL no filesystem answers is the caller's mistake (exit 2), not a failed export (1).
    unknown = runner.invoke(app, ["export", "events", "--out", "bad://lake/events"])
    assert unknown.exit_code == 2, unknown.output
    assert "bad://lake/events" in unknown.output and "Protocol not known" in unknown.output


def test_engine_choice(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert engine_name(settings, "popularity") == "local"
    monkeypatch.setenv("TASTEBUD_JOBS__ENGINE", "spark")
    monkeypatch.setenv("TASTEBUD_JOBS__ENGINES", '{"trending": "local"}')
    monkeypatch.setenv("TASTEBUD_SPARK_MASTER", "spark://spark-master:7077")
    settings = load_settings()
    assert settings.spark_master == "spark://spark-master:7077"
    assert engine_name(settings, "popularity") == "spark"
    assert engine_name(settings, "trending") == "local"
    assert engine_name(settings, "push") == "local"  # no Spark implementation


def test_run_engine_usage_errors(home: Path) -> None:
    unknown = runner.invoke(app, ["jobs", "run", "popularity", "--engine", "flink"])
    assert unknown.exit_code == 2 and "--engine must be one of local, spark" in unknown.output
    unsupported = runner.invoke(app, ["jobs", "run", "push", "--engine", "spark"])
    assert unsupported.exit_code == 2 and "push has no Spark implementation" in unsupported.output


def test_run_on_spark_from_the_cli(
    ingested: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASTEBUD_SPARK_MASTER", SPARK_MASTER)
    result = runner.invoke(
        app, ["jobs", "run", "popularity", "--engine", "spark", "--end", AS_OF, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "succeeded"
    settings = load_settings()
    from tastebud.stores import open_stores

    with open_stores(settings) as stores:
        published = read_published(stores.online, "popularity")
    assert published is not None and len(published["items"]) == 100
