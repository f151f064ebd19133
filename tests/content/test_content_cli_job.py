"""``tastebud content`` and the ``embed`` job end to end on the embedded default: a catalog
with audio (real worker processes), an update that processes only the new item, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from content_samples import catalog, click_track, write
from event_factories import make_events
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.observability import metrics
from tastebud.schemas import Item
from tastebud.stores import open_stores

runner = CliRunner()


def _metric(name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


def _upsert(items: list[Item]) -> None:
    with open_stores(load_settings()) as stores:
        stores.catalog.upsert_items(items)


def test_embed_update_show_similar(home: Path, tmp_path: Path) -> None:
    audio = {0: write(tmp_path / "a.wav", click_track(120, seconds=5)), 1: tmp_path / "gone.wav"}
    _upsert(catalog(30, audio))
    processed = _metric("tastebud_content_embed_processed_count_total")
    failed = _metric("tastebud_content_embed_fail_count_total", reason="missing_file")

    first = runner.invoke(app, ["content", "embed", "--workers", "1", "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["mode"] == "full" and summary["processed"] == 30
    assert summary["failures_by_reason"] == {"missing_file": 1}
    assert summary["coverage"]["coverage_ratio"] == 1.0
    assert summary["coverage"]["audio_extracted"] == 1
    assert _metric("tastebud_content_embed_processed_count_total") == processed + 30
    assert _metric("tastebud_content_embed_fail_count_total", reason="missing_file") == failed + 1
    assert _metric("tastebud_content_embed_coverage_ratio") == 1.0
    assert _metric("tastebud_content_embed_latency_ms_count", stage="audio") >= 2

    again = runner.invoke(app, ["content", "embed"])
    assert again.exit_code == 0 and "nothing new or changed" in again.output

    _upsert([Item(item_id="new-rock", title="Thunder anthem", categories=["rock"])])
    update = runner.invoke(app, ["content", "embed", "--json"])
    assert update.exit_code == 0, update.output
    assert json.loads(update.output)["processed"] == 1

    show = runner.invoke(app, ["content", "show"])
    assert show.exit_code == 0, show.output
    document = json.loads(show.output)
    assert document["schema"]["dimension"] == 128 and document["schema"]["items"] == 31
    assert document["report"]["mode"] == "incremental"

    similar = runner.invoke(app, ["content", "similar", "item010", "-k", "3"])
    assert similar.exit_code == 0, similar.output
    lines = similar.output.splitlines()
    assert lines[0].startswith("item010") and len(lines) == 4
    assert all(line.startswith("  0.") or line.startswith("  1.") for line in lines[1:])
    listed = runner.invoke(app, ["content", "similar", "item010", "nope", "-k", "3", "--json"])
    assert listed.exit_code == 0, listed.output
    found, unknown = json.loads(listed.output)
    with open_stores(load_settings()) as stores:
        titles = {i.item_id: (i.title, i.creator) for i in stores.catalog.iter_items()}
    for neighbour in [found, *found["similar"]]:
        assert (neighbour["title"], neighbour["creator"]) == titles[neighbour["item_id"]]
        assert neighbour["title"] and neighbour["title"] in similar.output
    assert unknown == {"item_id": "nope", "title": None, "creator": None, "similar": []}
    bare = runner.invoke(app, ["content", "similar", "item010", "--no-metadata", "--json"])
    assert "title" not in json.loads(bare.output)[0]["similar"][0]

    listed = runner.invoke(app, ["models", "list", "--json"])
    assert json.loads(listed.output) == []  # embeddings have their own registry prefix


def test_embed_errors(home: Path) -> None:
    bad = runner.invoke(app, ["content", "embed", "--text-encoder", "word2vec"])
    assert bad.exit_code == 2 and "unknown text encoder" in bad.output
    missing = runner.invoke(app, ["content", "show"])
    assert missing.exit_code == 2 and "production" in missing.output


def test_embed_job(home: Path) -> None:
    empty = runner.invoke(app, ["jobs", "run", "embed", "--json"])
    assert empty.exit_code != 0 and "nothing to embed" in empty.output
    _upsert(catalog(12))
    with open_stores(load_settings()) as stores:
        stores.events.append(make_events(20))
    result = runner.invoke(app, ["jobs", "run", "embed", "--json"])
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)["output"]
    assert output["mode"] == "full" and output["processed"] == 12 and output["version"]
    rerun = runner.invoke(app, ["jobs", "run", "embed", "--json"])
    assert json.loads(rerun.output)["output"]["mode"] == "unchanged"


def test_settings_drive_the_embedder(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _upsert(catalog(10))
    first = runner.invoke(app, ["content", "embed", "--json"])
    assert json.loads(first.output)["mode"] == "full"
    monkeypatch.setenv("TASTEBUD_CONTENT__DIM", "32")
    changed = runner.invoke(app, ["content", "embed", "--json"])
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.output)["mode"] == "full"  # new options: a refit
    show = json.loads(runner.invoke(app, ["content", "show"]).output)
    assert show["schema"]["dimension"] == 32
    forced = runner.invoke(app, ["content", "embed", "--items", "item003", "--json"])
    assert json.loads(forced.output)["processed"] == 1


def test_job_audio_budget() -> None:
    import time

    from tastebud.jobs.definitions.embed import audio_budget

    assert audio_budget(None) is None
    deadline = time.monotonic() + 1000
    assert audio_budget(deadline) == pytest.approx(deadline - 200, abs=1)
    soon = time.monotonic() + 100
    assert audio_budget(soon) == pytest.approx(soon - 60)
