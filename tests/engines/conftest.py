"""One SparkSession (``local[2]``) for the whole test session, and one small generated
world. Without pyspark or a Java runtime the Spark tests skip with the reason, unless
TASTEBUD_REQUIRE_SERVICES=1 (CI) makes that a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.spark_runtime import missing_runtime

SPARK_MASTER = os.environ.get("TASTEBUD_TEST_SPARK_MASTER", "local[2]")
REQUIRE = os.environ.get("TASTEBUD_REQUIRE_SERVICES") == "1"
#: Small enough for seconds per job, with something trending on its last day.
WORLD = WorldSpec(users=800, items=200, days=12, seed=0, trending_items=4)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    reason = missing_runtime()
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"TASTEBUD_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    from tastebud.engines.spark import spark_session

    session = spark_session(SPARK_MASTER)
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spark-world")
    generate_world(WORLD, folder)
    return folder
