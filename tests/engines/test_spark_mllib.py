"""Spark MLlib's ALS as a tastebud model family: trained on the Spark matrix, registered,
then indexed (ANN) and served by the precomputed lists exactly as ``als`` is; the model
contract (fold-in, save/load) is in tests/models/test_model_contract.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from test_spark_engine import world  # noqa: F401  (the fixture)
from test_spark_parity import AS_OF
from typer.testing import CliRunner

import tastebud
from tastebud.cli.main import app
from tastebud.config import Settings
from tastebud.data.interactions import from_table, read_event_store
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.engines import EventSource
from tastebud.engines.spark import SparkEngine
from tastebud.jobs import JobRunner, RetryPolicy, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.models import MLlibALSRecommender, ModelError, Recommender
from tastebud.ranking.precomputed import PrecomputedList, precomputed_key
from tastebud.registry import open_registry
from tastebud.stores import EventQuery, Stores
from tastebud.training.configuration import Configuration
from tastebud.training.pipeline import default_configuration, register_training, train

PARAMS = {"factors": 8, "iterations": 6, "regularization": 0.01, "blocks": 2}


def run_job(settings: Settings, stores: Stores, job: str) -> dict[str, Any]:
    history = open_run_history(settings)
    try:
        runner = JobRunner(
            settings,
            build_registry(RetryPolicy(max_attempts=1)),
            history,
            stores=stores,
            clock=lambda: AS_OF,
        )
        outcome = runner.run(job, as_of=AS_OF)
    finally:
        history.close()
    assert outcome.status == "succeeded", outcome
    return outcome.output


def test_mllib_als_is_registered_indexed_and_served(
    world: tuple[Settings, Stores],  # noqa: F811
) -> None:
    settings, stores = world
    log = read_event_store(stores.events, EventQuery(end=AS_OF))
    engine = SparkEngine.from_settings(settings)
    matrix = default_configuration(200).matrix
    result = train(
        log,
        configuration=Configuration(matrix, "mllib-als", PARAMS),
        event_types=settings.events.types,
        matrix_source=lambda options: engine.interaction_matrix(
            EventSource(stores.events), AS_OF, options=options, event_types=settings.events.types
        ),
    )
    assert result.coverage["factor_coverage_users"] > 0.9
    registry = open_registry(settings, stores.artifacts)
    version = register_training(result, log, registry, aliases=["production"])
    assert version.model == "mllib-als" and version.embedding_dim == 8
    model = registry.load("production", Recommender.load)
    assert isinstance(model, MLlibALSRecommender)
    np.testing.assert_array_equal(model.item_factors_, result.model.item_factors_)

    small = settings.ranking.with_overrides({"candidates": {"exact_threshold": 10}})
    indexed = run_job(settings.model_copy(update={"ranking": small}), stores, "index")
    assert indexed["model_version"] == version.model_version
    assert indexed["sample_recall@100"] >= 0.9

    lists = run_job(settings, stores, "recommendations")
    assert lists["model_version"] == version.model_version and lists["users"] > 500
    user = str(model.users_.ids[0])
    served = PrecomputedList.decode(stores.online.get(precomputed_key(user)) or b"")
    assert served is not None and served.model_version == version.model_version
    assert len(served.item_ids) > 0


def test_train_model_mllib_als_from_the_cli(
    home: Path, world_dir: Path, spark: Any, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(world_dir)]).exit_code == 0
    result = runner.invoke(app, ["train", "--model", "mllib-als", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert isinstance(Recommender.load(tmp_path / "m"), MLlibALSRecommender)
    unknown = runner.invoke(app, ["train", "--model", "nope", "--out", str(tmp_path / "n")])
    assert unknown.exit_code == 2 and "unknown model 'nope'" in unknown.output
    both = runner.invoke(app, ["train", "--model", "als", "--auto"])
    assert both.exit_code == 2 and "not both" in both.output


def test_a_failing_mllib_fit_is_a_model_error(spark: Any) -> None:
    matrix = build_matrix(
        from_table(pa.table({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})),
        MatrixOptions(),
    )
    with pytest.raises(ModelError, match="Spark MLlib ALS failed"):
        MLlibALSRecommender(factors=0).fit(matrix)


def test_a_session_mllib_starts_reads_spark_master_and_spark_conf_from_tastebud_toml(
    spark: Any, tmp_path: Path
) -> None:
    """In a process of its own (this one's session is already running): ``train --model
    mllib-als`` with no job before it starts Spark as the settings say."""
    (tmp_path / "tastebud.toml").write_text(
        'spark_master = "local[1]"\n[spark_conf]\n"spark.driver.memory" = "700m"\n'
        '"spark.sql.shuffle.partitions" = 3\n'
    )
    script = (
        "from tastebud.models.mllib import active_session\n"
        "s = active_session(); c = s.sparkContext\n"
        "print(c.master, c.getConf().get('spark.driver.memory'),"
        " s.conf.get('spark.sql.shuffle.partitions'), s.conf.get('spark.sql.session.timeZone'))\n"
        "s.stop()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASTEBUD_")}
    env["HOME"] = str(tmp_path)
    env["PYTHONPATH"] = str(Path(tastebud.__file__).parents[1])  # the code under test
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-4:] == ["local[1]", "700m", "3", "UTC"]
