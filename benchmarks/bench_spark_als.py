"""Spark MLlib ALS (``mllib-als``, implicit preferences) against implicit's ALS (``als``) on
the same split: NDCG@10 and fit time, on MovieLens 100K and a generated world.

Protocol: bench_quality.py's (per-user temporal 80/20 split, relevant = liked test items
seen in training, full ranking over the training catalog without training items, NDCG@10),
both models on the same binary training matrix (the evaluation baselines' matrix), 64
factors, 15 iterations. Their objectives differ (MLlib: confidence 1 + alpha*r and ALS-WR
regularization λ*n; implicit: confidence alpha*r, plain λ), so each gets a small grid of
alpha (at its usual regularization) chosen on a validation split carved out of the
training part (never the test part), then is refitted on the whole training part.

MLlib fits run in child processes, one per Spark master (``local[1]``, ``local[2]``: a
master is fixed per JVM), so the 1- and 2-core times are side by side; session start-up is
reported apart, and so is a first 1-iteration fit (class loading, JIT). Prints one line
per model, then one JSON document.

Growth: ``world-<events>`` (``world-3e6``) is a generated world of about that many events
(10,000 items, 30 days); ``--fixed`` skips the alpha grids and fits each library at alpha 1
(the grids' choice for both, on both data sets, in the first run), and ``--masters`` picks
the Spark masters, so larger worlds fit in a shared machine's slot; with ``--fixed``,
``--blocks`` sets MLlib's user and item blocks (default ``max(2, cores)``).

Run:  flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_spark_als.py \
          [--datasets ml-100k,world] [--out benchmarks/results/spark_als.json]
      flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_spark_als.py \
          --datasets world-1e6,world-3e6 --fixed --masters 'local[2]'
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality
from bench_quality import Judge, movielens, synthetic
from machine import describe

from tastebud.data.interactions import from_table
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.data.synthetic import WorldSpec, estimate_events, generate_world
from tastebud.models import make_model

DATASETS = Path(os.environ.get("TASTEBUD_DATASETS", bench_quality.DATASETS))
bench_quality.DATASETS = DATASETS
CACHE = Path(os.environ.get("TASTEBUD_BENCH_CACHE", "/tmp/tastebud-bench-spark-als"))
BASE = {"factors": 64, "iterations": 15}
# Small grids (a MLlib fit costs a minute under this machine's load): alpha, at each
# library's usual regularization (MLlib's λ is per interaction, so smaller).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "als": [{**BASE, "regularization": 0.05, "alpha": a} for a in (1.0, 10.0)],
    "mllib-als": [{**BASE, "regularization": 0.01, "alpha": a} for a in (1.0, 10.0)],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,world")
    parser.add_argument("--out", type=Path, help="write the JSON document here too")
    parser.add_argument("--fixed", action="store_true", help="alpha 1 for both, no grids")
    parser.add_argument("--masters", default="local[2],local[1]")
    parser.add_argument(
        "--blocks", type=int, help="MLlib's user and item blocks (default: max(2, cores))"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # JSON: master, dataset, grid|params
    return parser.parse_args(argv)


def table_of(name: str) -> tuple[Any, bool]:
    """The dataset's events and whether relevance is by rating (MovieLens) or by event."""
    if name == "world":
        return synthetic(CACHE), False
    if name.startswith("world-"):
        return scaled_world(float(name.removeprefix("world-"))), False
    return movielens(name), True


def scaled_world(events: float) -> Any:
    """A generated world of about ``events`` events (10,000 items, 30 days), cached."""
    folder = CACHE / f"world-{events:.0e}"
    if not (folder / "events.parquet").exists():
        probe = WorldSpec(users=1000, items=10_000, days=30, seed=11)
        users = max(1, round(events / (estimate_events(probe) / probe.users)))
        generate_world(WorldSpec(users=users, items=10_000, days=30, seed=11), folder)
    table = pq.read_table(folder / "events.parquet")
    return pa.table(
        {
            "user_id": table.column("user_id"),
            "item_id": table.column("item_id"),
            "event_type": table.column("event_type"),
            "rating": table.column("value"),
            "timestamp": table.column("timestamp"),
        }
    )


def judges(name: str) -> tuple[Judge, Judge]:
    table, explicit = table_of(name)
    judge = Judge(table, explicit=explicit)
    return judge, Judge(judge.train_table, explicit=explicit)  # validation: train part only


def fit_and_judge(judge: Judge, model: str, params: dict[str, Any]) -> dict[str, Any]:
    options = {**MatrixOptions().model_dump(), "transform": "binary", "liked_rating": 0.0,
               "unliked_rating_weight": 1.0}  # fmt: skip
    matrix = build_matrix(from_table(judge.train_table), MatrixOptions(**options))
    started = time.perf_counter()
    fitted = make_model(model, **params).fit(matrix)
    seconds = time.perf_counter() - started
    metrics = judge.metrics(judge.tastebud_top(fitted))
    return {
        "params": params,
        "ndcg@10": round(metrics["ndcg@10"], 4),
        "recall@10": round(metrics["recall@10"], 4),
        "fit_seconds": round(seconds, 2),
    }


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """MLlib fits on one master, in this (child) process: its JVM, its cores."""
    os.environ["TASTEBUD_SPARK_MASTER"] = spec["master"]
    from tastebud.models.mllib import active_session

    started = time.perf_counter()
    active_session().sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - started
    test, validation = judges(spec["dataset"])
    # The first MLlib fit of a JVM pays for class loading and JIT (~4x a warm fit here): a
    # 1-iteration fit first, reported apart, so every timed fit is a warm one.
    warmup = fit_and_judge(test, "mllib-als", {"factors": 4, "iterations": 1})["fit_seconds"]
    grid = [fit_and_judge(validation, "mllib-als", params) for params in spec.get("grid", [])]
    params = max(grid, key=lambda fit: fit["ndcg@10"])["params"] if grid else spec["params"]
    chosen = fit_and_judge(test, "mllib-als", params)
    return {"session_seconds": round(startup, 2), "warmup_seconds": warmup, "grid": grid,
            "test": chosen}  # fmt: skip


def in_child(spec: dict[str, Any]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def run_dataset(
    name: str, fixed: bool, masters: list[str], blocks: int | None = None
) -> dict[str, Any]:
    test, validation = judges(name)
    result: dict[str, Any] = {"dataset": name, "protocol": test.summary, "models": {}}
    # implicit: the grid on validation (or alpha 1), the chosen point on test, here.
    grid = [] if fixed else [fit_and_judge(validation, "als", p) for p in GRIDS["als"]]
    best = max(grid, key=lambda fit: fit["ndcg@10"])["params"] if grid else GRIDS["als"][0]
    chosen = fit_and_judge(test, "als", best)
    result["models"]["als (implicit)"] = {"grid": grid, "test": chosen}
    print(f"{name:<8} als (implicit)  test {chosen}", flush=True)
    # MLlib: the grid and the chosen point on the first master, that point on the others.
    first = {"master": masters[0], "dataset": name}
    if fixed:
        extra = {"blocks": blocks} if blocks else {}
        searched = in_child({**first, "params": {**GRIDS["mllib-als"][0], **extra}})
    else:
        searched = in_child({**first, "grid": GRIDS["mllib-als"]})
    best = searched["test"]["params"]
    result["models"]["mllib-als (Spark)"] = {"grid": searched["grid"], "test": {}}
    runs = {masters[0]: searched}
    for master in masters[1:]:
        runs[master] = in_child({"master": master, "dataset": name, "params": best})
    for master, run in runs.items():
        fit = {**run["test"], "session_seconds": run["session_seconds"],
               "warmup_seconds": run["warmup_seconds"]}  # fmt: skip
        result["models"]["mllib-als (Spark)"]["test"][master] = fit
        print(f"{name:<8} mllib-als {master}  test {fit}", flush=True)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return {}
    runs = []
    load_before = os.getloadavg()
    for name in args.datasets.split(","):
        if not name.startswith("world") and not (DATASETS / name).is_dir():
            print(f"{name}: not found under {DATASETS}; skipped")
            continue
        runs.append(run_dataset(name, args.fixed, args.masters.split(","), args.blocks))
    document = {
        "benchmark": "spark-als",
        "runs": runs,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "machine": describe(),
    }
    print(json.dumps(document, indent=2, default=list))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2, default=list) + "\n")
    return document


if __name__ == "__main__":
    main()
