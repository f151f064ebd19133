"""Explicit rating prediction (issue 23.4): tastebud's rating models against scikit-surprise.

Protocol (``tastebud evaluate --protocol ratings``, the same code): a seeded random 80/20
split of all ratings; each tastebud model picks its grid point by validation RMSE on a
seeded 10% carved out of the train part (never the test part), is refitted on the whole
train part and judged once on the test part. surprise's SVD and SVD++ run with their
default parameters on the same train rows (``pip install scikit-surprise``; without it the
baselines are skipped and the document says so). Reported: RMSE, MAE and fit seconds per
model; the best tastebud RMSE against the best baseline's (target: at least 2% lower) and
against the seed's 0.85.

Run:  flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_ratings.py \\
          [--datasets ml-100k,ml-latest-small] [--out benchmarks/results/ratings.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality
from bench_quality import movielens
from machine import describe

from tastebud.data.interactions import from_table
from tastebud.training.rating_evaluation import evaluate_ratings

DATASETS = Path(os.environ.get("TASTEBUD_DATASETS", bench_quality.DATASETS))
bench_quality.DATASETS = DATASETS
SEED_TARGET = 0.85
OURS = ("biased-mf", "svdpp", "knn-baseline", "rating-ensemble")
BASELINES = ("surprise-svd", "surprise-svdpp")


def surprise_available() -> bool:
    try:
        import surprise  # noqa: F401
    except ImportError:
        return False
    return True


def run(dataset: str, models: list[str], seed: int) -> dict[str, Any]:
    log = from_table(movielens(dataset))
    started = time.monotonic()

    def show(name: str, metrics: dict[str, float]) -> None:
        print(f"  {dataset} {name:<16} RMSE {metrics['rmse']:.4f}  MAE {metrics['mae']:.4f}",
              flush=True)  # fmt: skip

    report = evaluate_ratings(log, models, fraction=0.2, random_state=seed, on_model=show)
    document = report.to_dict()
    document["dataset"] = dataset
    document["seconds"] = round(time.monotonic() - started, 1)
    rows = report.models
    ours = min((rows[name]["rmse"], name) for name in OURS if name in rows)
    document["best_tastebud"] = {"model": ours[1], "rmse": ours[0]}
    document["vs_seed_0.85"] = round(ours[0] / SEED_TARGET - 1, 4)
    baselines = [(rows[name]["rmse"], name) for name in BASELINES if name in rows]
    if baselines:
        best = min(baselines)
        document["best_baseline"] = {"model": best[1], "rmse": best[0]}
        document["rmse_reduction_vs_best_baseline"] = round(1 - ours[0] / best[0], 4)
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="write the JSON document here too")
    args = parser.parse_args()
    has_surprise = surprise_available()
    models = ["global-mean", *(BASELINES if has_surprise else ()), *OURS]
    results = []
    for dataset in args.datasets.split(","):
        if not DATASETS.joinpath(dataset).is_dir():
            print(f"skipping {dataset}: no copy under {DATASETS}", file=sys.stderr)
            continue
        results.append(run(dataset, models, args.seed))
    load = os.getloadavg()
    document = {
        "benchmark": "ratings",
        "machine": describe(),
        "load_average": [round(v, 2) for v in load],
        "surprise": has_surprise,
        "results": results,
    }
    text = json.dumps(document, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
