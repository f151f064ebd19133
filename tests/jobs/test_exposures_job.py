"""``tastebud jobs run exposures-compact`` on the embedded default: the exposure log's old
small files are merged (young ones left to their writer), the summary says what it did, and
an empty log is no failure."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.experiments.exposure import Exposure
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.stores import open_stores

runner = CliRunner()
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _run() -> dict:
    result = runner.invoke(app, ["jobs", "run", "exposures-compact", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["output"]


def test_the_job_merges_old_small_files(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    with open_stores(settings) as stores:
        log = open_exposure_log(settings, stores.database)
        for n in range(30):
            log.append(
                Exposure(f"l{n}", T0 + timedelta(minutes=n), None, None, "u1", None, (), None, 1.0)
            )
            log.flush()
        log.close()
        root = log.root  # type: ignore[attr-defined]
    assert _run()["inputs"] == 0  # every file is younger than the minimum age
    old = time.time() - 3600
    for path in root.rglob("part-*.parquet"):
        os.utime(path, (old, old))
    monkeypatch.setenv("TASTEBUD_EXPERIMENTS__COMPACTION_MIN_AGE_SECONDS", "7200")
    assert _run()["inputs"] == 0  # an hour old, and the settings ask for two
    monkeypatch.delenv("TASTEBUD_EXPERIMENTS__COMPACTION_MIN_AGE_SECONDS")
    output = _run()
    assert output["inputs"] == 30 and output["outputs"] == 1
    assert output["days"][0]["day"] == "2026-03-01"
    assert log.scan(T0, T0 + timedelta(days=1)).num_rows == 30
