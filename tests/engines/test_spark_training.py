"""Training on the Spark matrix: the ``train`` job and ``tastebud train --engine spark`` fit
on the interaction matrix built on Spark (``local[2]``) and give the model the local engine
gives; an unreachable master registers nothing and the production model keeps serving."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SPARK_MASTER
from test_spark_engine import failing_run, with_jobs, world  # noqa: F401  (the fixture)
from test_spark_parity import AS_OF, on
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import Settings
from tastebud.data.interactions import read_event_store
from tastebud.jobs import JobRunner, RetryPolicy, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.models.base import Recommender
from tastebud.registry import open_registry
from tastebud.stores import EventQuery, Stores
from tastebud.training.pipeline import train

USERS = [f"u{n}" for n in range(0, 800, 37)]


def assert_same_model(local: Recommender, spark: Recommender) -> None:
    assert local.users_ == spark.users_ and local.items_ == spark.items_
    local_ids, local_scores = local.recommend(USERS, 10)
    spark_ids, spark_scores = spark.recommend(USERS, 10)
    assert (local_ids == spark_ids).all()
    np.testing.assert_allclose(local_scores, spark_scores, rtol=1e-5, atol=1e-6)


def train_job(settings: Settings, stores: Stores) -> dict[str, Any]:
    history = open_run_history(settings)
    try:
        runner = JobRunner(
            settings,
            build_registry(RetryPolicy(max_attempts=1)),
            history,
            stores=stores,
            clock=lambda: AS_OF,
        )
        outcome = runner.run("train", as_of=AS_OF)
    finally:
        history.close()
    assert outcome.status == "succeeded", outcome
    return outcome.output


def test_the_train_job_on_spark_fits_the_local_model(
    world: tuple[Settings, Stores],  # noqa: F811
) -> None:
    settings, stores = world
    output = train_job(with_jobs(on(settings, "spark"), train_auto=False), stores)
    assert output["promoted"]
    registry = open_registry(settings, stores.artifacts)
    spark_model = registry.load("production", Recommender.load)
    version = registry.get("production")
    end = datetime.fromisoformat(version.model_dump()["interval_end"])
    log = read_event_store(stores.events, EventQuery(end=end))
    local = train(log, event_types=settings.events.types)
    assert version.model_dump()["rows"] == len(log)
    assert version.params["model"] == local.configuration.model
    assert_same_model(local.model, spark_model)


def test_an_unreachable_master_registers_no_model(
    world: tuple[Settings, Stores],  # noqa: F811
) -> None:
    settings, stores = world
    spark = with_jobs(on(settings, "spark"), train_auto=False)
    unreachable = spark.model_copy(update={"spark_master": "spark://127.0.0.1:9"})
    error = failing_run(unreachable, stores, "train")
    assert "spark://127.0.0.1:9 is unreachable" in error
    assert open_registry(settings, stores.artifacts).list_versions() == []


def test_train_engine_spark_from_the_cli(
    home: Path, world_dir: Path, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(world_dir)]).exit_code == 0
    local = runner.invoke(app, ["train", "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    monkeypatch.setenv("TASTEBUD_SPARK_MASTER", "spark://127.0.0.1:9")
    down = runner.invoke(app, ["train", "--engine", "spark", "--out", str(tmp_path / "down")])
    assert down.exit_code == 2 and "is unreachable" in down.output
    assert not (tmp_path / "down").exists()
    monkeypatch.setenv("TASTEBUD_SPARK_MASTER", SPARK_MASTER)
    result = runner.invoke(app, ["train", "--engine", "spark", "--out", str(tmp_path / "spark")])
    assert result.exit_code == 0, result.output
    assert_same_model(Recommender.load(tmp_path / "local"), Recommender.load(tmp_path / "spark"))
    both = runner.invoke(app, ["train", "--engine", "spark", "--interactions", str(tmp_path)])
    assert both.exit_code == 2 and "--interactions" in both.output
