"""The ingestion entry points stay light: importing the gateway, or the modules the API's
event route runs through, loads none of the model and content libraries (issue 17). Each
check runs in a fresh interpreter, so what an earlier test imported cannot hide a regression."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("faiss", "implicit", "sklearn", "librosa", "numba", "torch", "pyspark")
# Nor the packages above the gateway that would bring them in time. (``tastebud.config``
# still imports ``tastebud.ranking_config``, which is settings only: allowed.)
ABOVE = ("tastebud.ranking.", "tastebud.content", "tastebud.models", "tastebud.training")
ALLOWED = frozenset({"tastebud.ranking_config"})
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
heavy, above, allowed = json.loads(sys.argv[2])
found = {name.split(".")[0] for name in sys.modules} & set(heavy)
found |= {n for n in sys.modules if n.startswith(tuple(above)) and n not in allowed}
print(json.dumps(sorted(found)))
"""


def loaded_heavy(module: str) -> list[str]:
    """The heavy libraries and higher tastebud modules in ``sys.modules`` after a fresh
    interpreter imports ``module``."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, json.dumps([HEAVY, ABOVE, sorted(ALLOWED)])],
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


def test_the_probe_sees_a_heavy_import() -> None:
    # The check can fail: the serving core does load faiss (and itself).
    found = loaded_heavy("tastebud.ranking.retrieval")
    assert "faiss" in found and "tastebud.ranking.retrieval" in found
