"""Neural models (issue 23) against EASE and ALS on MovieLens, one protocol, one run.

Protocol: bench_quality.py's (per-user temporal 80/20 split, relevant = test rating >= 4
on items seen in training, full ranking over the training catalog without training items,
NDCG@10). Every model trains through tastebud's ``Recommender`` interface on the same
matrix (default matrix options: ratings weighted by strength).

Tuning is fair and blind to the test set: each family gets a small grid, chosen by
NDCG@10 on a validation split carved out of the training part (each user's last 20% of
their training interactions), then refitted on the whole training part with the chosen
point. ALS is the "tuned dot product" of Rendle et al. (2020) that NeuMF is held against;
``ncf (GMF only)`` is NeuMF's own dot-product half trained with the same loss.

Reported per model: the chosen point, validation and test NDCG@10, recall@10, coverage,
fit seconds, and for the neural ones seconds per epoch. MovieLens copies come from
../shared/datasets or $TASTEBUD_DATASETS (skipped when absent; never committed).

Run:  flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_neural.py \
          [--datasets ml-100k,ml-latest-small] [--out benchmarks/results/neural.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality
from bench_quality import Judge, movielens
from machine import describe

from tastebud.data.interactions import from_table
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.models import make_model

# TASTEBUD_DATASETS points elsewhere (a worktree sits one level deeper than the checkout).
DATASETS = Path(os.environ.get("TASTEBUD_DATASETS", bench_quality.DATASETS))
bench_quality.DATASETS = DATASETS

GRIDS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "popularity": ("popularity", [{"half_life_days": None}]),
    "ease": ("ease", [{"l2": l2} for l2 in (100.0, 200.0, 500.0)]),
    "als (tuned dot product)": (
        "als",
        [
            {"factors": f, "regularization": r, "alpha": a, "iterations": 15}
            for f in (32, 64, 128)
            for r in (0.05, 0.5)
            for a in (1.0, 10.0)
        ],
    ),
    "mult-vae": (
        "mult-vae",
        [
            {"hidden": 600, "latent": 200, "epochs": 50, "batch_size": 100},
            {"hidden": 200, "latent": 64, "epochs": 50, "batch_size": 100},
            {"hidden": 200, "latent": 64, "epochs": 100, "batch_size": 100},
        ],
    ),
    "two-tower": (
        "two-tower",
        [
            *({"factors": 64, "epochs": epochs} for epochs in (3, 5, 8)),
            {"factors": 64, "epochs": 5, "logq_correction": False},
        ],
    ),
    "ncf (NeuMF)": (
        "ncf",
        [
            {"factors": f, "mlp_layers": (2 * f, f, f // 2), "epochs": 20, "batch_size": 1024}
            for f in (16, 32)
        ],
    ),
    "ncf (GMF only)": (
        "ncf",
        [{"factors": f, "mlp_layers": (), "epochs": 20, "batch_size": 1024} for f in (32, 64)],
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k")
    parser.add_argument("--families", default=",".join(GRIDS))
    parser.add_argument("--out", type=Path, help="write the JSON document here too")
    return parser.parse_args(argv)


def fit_and_judge(judge: Judge, model_name: str, params: dict[str, Any]) -> dict[str, Any]:
    matrix = build_matrix(from_table(judge.train_table), MatrixOptions())
    started = time.perf_counter()
    model = make_model(model_name, **params).fit(matrix)
    seconds = time.perf_counter() - started
    metrics = judge.metrics(judge.tastebud_top(model))
    result = {
        "ndcg@10": round(metrics["ndcg@10"], 4),
        "recall@10": round(metrics["recall@10"], 4),
        "coverage@10": round(metrics["coverage@10"], 4),
        "fit_seconds": round(seconds, 2),
    }
    if hasattr(model, "epoch_seconds_"):
        result["epochs"] = len(model.epoch_seconds_)
        result["seconds_per_epoch"] = round(float(np.median(model.epoch_seconds_)), 3)
    return result


def run_dataset(name: str, families: list[str]) -> dict[str, Any]:
    judge = Judge(movielens(name), explicit=True)
    validation = Judge(judge.train_table, explicit=True)  # never reads the test part
    results: dict[str, Any] = {"dataset": name, "protocol": judge.summary, "models": {}}
    for family in families:
        model_name, grid = GRIDS[family]
        trials = []
        for params in grid:
            trial = fit_and_judge(validation, model_name, params)
            trials.append({"params": params, **trial})
            print(f"  {name} {family} {params}: validation {trial['ndcg@10']:.4f}", flush=True)
        best = max(trials, key=lambda trial: trial["ndcg@10"])
        test = fit_and_judge(judge, model_name, best["params"])
        results["models"][family] = {
            "params": best["params"],
            "validation_ndcg@10": best["ndcg@10"],
            "test": test,
            "grid": trials,
        }
        print(
            f"{name:<16} {family:<24} test ndcg@10 {test['ndcg@10']:.4f}  "
            f"recall {test['recall@10']:.4f}  fit {test['fit_seconds']:.1f}s"
            + (f"  {test['seconds_per_epoch']:.2f}s/epoch" if "seconds_per_epoch" in test else ""),
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    families = [family.strip() for family in args.families.split(",") if family.strip()]
    unknown = sorted(set(families) - set(GRIDS))
    if unknown:
        raise SystemExit(f"unknown families {unknown}; choose from {sorted(GRIDS)}")
    runs = []
    for name in args.datasets.split(","):
        if not (DATASETS / name).is_dir():
            print(f"{name}: not found under {DATASETS}; skipped")
            continue
        runs.append(run_dataset(name, families))
    document = {"benchmark": "neural-models", "runs": runs, "machine": describe()}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2, default=list) + "\n")
    return document


if __name__ == "__main__":
    main()
