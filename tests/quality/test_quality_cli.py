"""``tastebud quality check|history`` over a generated store, and the metrics a run exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.observability import metrics

from .conftest import END
from .test_train_gate import negative_plays

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    before = structlog.get_config()
    yield
    structlog.configure(**before)


def test_check_records_and_history_reads(home: Path, build) -> None:
    stores, _ = build()
    stores.close()
    checked = runner.invoke(app, ["quality", "check", "--as-of", END.isoformat(), "--json"])
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.stdout)
    assert report["blocking"] == [] and len(report["checks"]) == 7
    table = runner.invoke(app, ["quality", "check", "--as-of", END.isoformat()], terminal_width=160)
    assert table.exit_code == 0 and "freshness" in table.stdout
    history = runner.invoke(app, ["quality", "history", "--check", "volume", "--json"])
    rows = json.loads(history.stdout)
    assert len(rows) == 2 and rows[0]["check"] == "volume"
    one_run = runner.invoke(app, ["quality", "history", "--run", report["run_id"], "--json"])
    assert {row["run_id"] for row in json.loads(one_run.stdout)} == {report["run_id"]}
    exported = metrics.registry.get_sample_value(
        "tastebud_quality_check_status", {"check": "schema"}
    )
    assert exported == 0.0


def test_check_exits_1_when_a_critical_check_fails(home: Path, build) -> None:
    stores, _ = build(negative_plays, model=False)
    stores.close()
    checked = runner.invoke(app, ["quality", "check", "--as-of", END.isoformat()])
    assert checked.exit_code == 1
    assert "critical checks failed" in checked.output and "schema" in checked.output


def test_bad_options_and_rules_files_are_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = runner.invoke(app, ["quality", "history", "--check", "vibes"])
    assert bad.exit_code == 2 and "--check must be one of" in bad.output
    rules = tmp_path / "rules.toml"
    rules.write_text('[thresholds."volume.dorp"]\nfail = 0.5\n')
    monkeypatch.setenv("TASTEBUD_QUALITY__RULES_FILE", str(rules))
    refused = runner.invoke(app, ["quality", "check", "--as-of", END.isoformat()])
    assert refused.exit_code == 2
    assert str(rules) in refused.output and "volume.dorp" in refused.output


def test_ingest_with_quality_reports_broken_values(home: Path, world: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    events = negative_plays(pq.read_table(world / "events.parquet"))
    path = tmp_path / "events.parquet"
    pq.write_table(events, path)
    done = runner.invoke(app, ["ingest", str(path), "--quality", "--json"])
    assert done.exit_code == 0, done.output
    quality = json.loads(done.stdout)["quality"]
    assert quality["events"] == events.num_rows
    assert [failure["column"] for failure in quality["failures"]] == ["seconds_value"]
    assert 0 < quality["invalid_share"] < 0.1
