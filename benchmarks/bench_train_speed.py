"""The pipeline around an ALS fit against calling `implicit` directly on the same matrix.

On a synthetic world of ~20M events in the embedded store:
* tastebud: read the events from the store, build the preference matrix (weights, confidence
  transform, vocabularies), fit ALS through the model interface, save it and register it;
* peer: `implicit.als.AlternatingLeastSquares(...).fit(matrix)` on the very matrix tastebud
  built (the part nobody can skip).
The target is pipeline time <= 1.5x the direct fit. Runs alternate; medians are reported.

Run:  .venv/bin/python benchmarks/bench_train_speed.py [--events 20000000] [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

from tastebud.config import load_settings
from tastebud.data.bulk_load import ingest_sources
from tastebud.data.interactions import read_event_store
from tastebud.data.loaders import open_sources
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.models import ALSRecommender
from tastebud.registry import ModelRegistry
from tastebud.stores import open_stores
from tastebud.training.pipeline import TrainingResult, register_training

RESULTS = Path(__file__).resolve().parent / "results" / "train-speed.json"
ALS = {"factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15}


def prepare(events: int, work: Path) -> Path:
    """A world of about ``events`` events, ingested into an embedded store under ``work``."""
    home = work / "home"
    if (home / "ready").exists():
        return home
    users = max(100, events // 125)
    world = work / "world"
    if not (world / "events.parquet").exists():
        generate_world(WorldSpec(users=users, items=users, days=30, seed=7), world)
    settings = load_settings(home=home, online_url="memory://")
    with open_stores(settings) as stores:
        ingest_sources(open_sources(world), stores, settings)
    (home / "ready").write_text(str(pq.ParquetFile(world / "events.parquet").metadata.num_rows))
    return home


def pipeline(home: Path) -> tuple[dict[str, float], Any]:
    settings = load_settings(home=home, online_url="memory://")
    timings: dict[str, float] = {}
    with open_stores(settings) as stores:
        started = time.perf_counter()
        log = read_event_store(stores.events)
        timings["load"] = time.perf_counter() - started

        mark = time.perf_counter()
        matrix = build_matrix(log, MatrixOptions(transform="log"), settings.events.types)
        timings["build"] = time.perf_counter() - mark

        mark = time.perf_counter()
        model = ALSRecommender(**ALS).fit(matrix)
        timings["fit"] = time.perf_counter() - mark

        mark = time.perf_counter()
        result = TrainingResult(model, matrix, _configuration(), None, None)
        registry = ModelRegistry(stores.artifacts, cache_dir=home / "cache")
        register_training(result, log, registry)
        timings["register"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - started
    return timings, matrix


def _configuration():  # the configuration object the manifest records
    from tastebud.training.configuration import Configuration

    return Configuration(MatrixOptions(transform="log").model_dump(), "als", dict(ALS))


def direct(matrix: Any) -> float:
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(**ALS, random_state=42)
        started = time.perf_counter()
        model.fit(matrix.matrix, show_progress=False)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-train")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    home = prepare(args.events, args.work)
    print(f"world ready in {time.perf_counter() - started:.0f}s", flush=True)
    runs: list[dict[str, float]] = []
    for run in range(args.runs):
        timings, matrix = pipeline(home)
        timings["implicit_direct_fit"] = direct(matrix)
        timings["ratio"] = timings["total"] / timings["implicit_direct_fit"]
        runs.append(timings)
        print(f"run {run}: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()), flush=True)
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    result = {
        "machine": describe(),
        "events": int((home / "ready").read_text()),
        "matrix": {"users": matrix.shape[0], "items": matrix.shape[1], "nnz": matrix.nnz},
        "als": ALS,
        "runs": runs,
        "median": medians,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["median"], indent=2))


if __name__ == "__main__":
    main()
