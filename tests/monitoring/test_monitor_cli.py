"""``tastebud monitor check|history`` over a generated store, the metrics a run exports, the
checks on PostgreSQL, and the serving hook's per-version metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.monitoring.runner import open_results, run_monitor
from tastebud.monitoring.serving import observe_served
from tastebud.observability import metrics
from tastebud.ranking.types import RankedItem, RankedList

from .conftest import CHECKED

runner = CliRunner()


def test_check_records_and_history_reads(home: Path, build) -> None:
    stores, _ = build("b")
    stores.close()
    checked = runner.invoke(app, ["monitor", "check", "--as-of", CHECKED.isoformat(), "--json"])
    assert checked.exit_code == 1, checked.output  # the decayed model fires its trigger
    report = json.loads(checked.stdout)
    assert "ndcg_drop" in report["firing"]
    assert [check["check"] for check in report["checks"]][:2] == ["baseline", "offline"]
    table = runner.invoke(
        app, ["monitor", "check", "--as-of", CHECKED.isoformat()], terminal_width=160
    )
    assert table.exit_code == 1 and "retraining triggers fire" in table.output
    history = runner.invoke(app, ["monitor", "history", "--check", "offline", "--json"])
    rows = json.loads(history.stdout)
    assert len(rows) == 2 and {row["status"] for row in rows} == {"fail"}
    one = runner.invoke(app, ["monitor", "history", "--run", report["run_id"], "--json"])
    assert {row["run_id"] for row in json.loads(one.stdout)} == {report["run_id"]}
    firing = metrics.registry.get_sample_value(
        "tastebud_monitoring_trigger_firing", {"trigger": "ndcg_drop"}
    )
    assert firing == 1.0
    drop = metrics.registry.get_sample_value(
        "tastebud_monitoring_metric_value",
        {"model_version": report["model_version"], "metric": "offline.ndcg@10.drop"},
    )
    assert drop is not None and drop > 0.1


def test_bad_options_and_rules_files_are_refused(home: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["monitor", "history", "--check", "vibes"])
    assert bad.exit_code != 0 and "--check must be one of" in bad.output
    rules = tmp_path / "triggers.toml"
    rules.write_text("[triggers]\nndcg_drop = 7\n")
    (tmp_path / "tastebud.toml").write_text(f'[monitoring]\nrules_file = "{rules}"\n')
    refused = runner.invoke(app, ["monitor", "check"])
    assert refused.exit_code != 0
    assert str(rules) in refused.output and "triggers.ndcg_drop" in refused.output


def test_an_as_of_past_any_event_time_is_refused_and_nothing_recorded(home: Path) -> None:
    """``--as-of 9999-12-31`` ran every check and recorded a run dated 9999 (served as the
    latest by ``GET /v1/monitoring``); no event can be stamped later than now plus
    ``[events] max_future_seconds``, so such a moment is a typo (the bad-input audit)."""
    for command in (["monitor", "check"], ["quality", "check"]):
        refused = runner.invoke(app, [*command, "--as-of", "9999-12-31"], terminal_width=200)
        assert refused.exit_code == 2, refused.output
        assert "--as-of 9999-12-31T00:00:00+00:00 is in the future" in refused.output
    history = runner.invoke(app, ["monitor", "history", "--json"])
    assert history.exit_code == 0 and json.loads(history.output) == []


@pytest.mark.postgres
def test_checks_run_and_record_on_postgresql(build, postgres_url: str) -> None:
    stores, settings = build("b", database_url=postgres_url)
    with open_results(stores) as results:
        report = run_monitor(stores, settings, as_of=CHECKED, results=results)
        stored = results.latest()
        assert results.baseline(report.model_version) is not None
    statuses = {check.check: check.status for check in report.checks}
    assert statuses["offline"] == "fail" and statuses["baseline"] == "pass"
    assert {row.check: row.status for row in stored} == statuses


def test_the_serving_hook_records_per_model_version() -> None:
    def served(version: str, ids: list[str]) -> RankedList:
        items = [RankedItem(item, 0.5, ["cf"], None) for item in ids]
        return RankedList(items, version, "warm", 1.0, 0.4, 0.0, 10, 0, {"total": 12.0})

    def sample(name: str, version: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"model_version": version, **labels})

    observe_served(served("hook-v1", ["a", "b"]))
    observe_served(served("hook-v1", ["b", "c"]))
    observe_served(served("hook-v1", []))
    observe_served(served("hook-v2", ["a"]))
    assert sample("tastebud_model_served_items_count", "hook-v1") == 3.0
    assert sample("tastebud_model_served_items_count", "hook-v2") == 1.0
    assert sample("tastebud_model_served_lists_total", "hook-v1", empty="false") == 2.0
    assert sample("tastebud_model_served_lists_total", "hook-v1", empty="true") == 1.0
    assert sample("tastebud_model_serving_latency_seconds_count", "hook-v1") == 2.0
    assert sample("tastebud_model_serving_latency_seconds_sum", "hook-v1") == pytest.approx(0.024)
    # scores may be negative (a bucket below 0): such a histogram exports no _sum
    assert sample("tastebud_model_served_score_value_bucket", "hook-v1", le="0.4") == 0.0
    assert sample("tastebud_model_served_score_value_bucket", "hook-v1", le="0.5") == 2.0
