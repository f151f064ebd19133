"""The ingestion entry points stay light: importing the gateway, or the modules the API's
event route runs through, loads none of the model and content libraries (issue 17). Each
check runs in a fresh interpreter, so what an earlier test imported cannot hide a regression."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("faiss", "implicit", "sklearn", "librosa", "numba", "torch", "pyspark")
# Nor the packages above the gateway that would bring them in time.
ABOVE = ("tastebud.ranking", "tastebud.content", "tastebud.models", "tastebud.training")
# The gateway package, and the path POST /v1/events takes: route, dependencies, ingestion.
ENTRY_POINTS = (
    "tastebud.gateway",
    "tastebud.gateway.ingestion",
    "tastebud.gateway.dlq",
    "tastebud.gateway.keys",
    "tastebud.gateway.ratelimit",
    "tastebud.api.deps",
    "tastebud.api.routes.events",
    "tastebud.stores.activity",
    "tastebud.client",
)
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
heavy, above = json.loads(sys.argv[2])
found = {name.split(".")[0] for name in sys.modules} & set(heavy)
found |= {n for n in sys.modules if n.split(".")[:2] in [a.split(".") for a in above]}
print(json.dumps(sorted(found)))
"""


def loaded_heavy(module: str, above: tuple[str, ...] = ABOVE) -> list[str]:
    """The heavy libraries and the ``above`` tastebud packages in ``sys.modules`` after a
    fresh interpreter imports ``module``."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, json.dumps([HEAVY, above])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_ingestion_entry_points_load_no_heavy_library(module: str) -> None:
    assert loaded_heavy(module) == []


def test_the_api_app_factory_loads_no_heavy_library() -> None:
    # The one app also serves recommendations, so it imports the serving stack; the model
    # libraries load when a model or an index is first used (a worker's model load), not
    # when the app factory is imported.
    assert loaded_heavy("tastebud.api.app", above=()) == []


def test_the_probe_sees_a_heavy_import() -> None:
    # The check can fail: it sees a heavy library, and a module of a package above.
    assert "faiss" in loaded_heavy("faiss")
    assert "tastebud.ranking.retrieval" in loaded_heavy("tastebud.ranking.retrieval")
