"""Serving latency with a two-tower model in production against ALS (issue 23), side by side.

One generated world (``datasets generate``: ``--users`` x ``--items`` over 30 days, ending
now) is ingested into a private home; ``train --model als`` and ``train --model two-tower``
each register a version on the default matrix. For each run and model, in alternating order
(als, two-tower, then two-tower, als, ...), the model is promoted to ``production`` and
``tastebud serve --workers 2`` ranks every request on demand (precomputed lists off: k = 20,
MMR, explanations, 500 CF candidates through the exact or HNSW retrieval the model's size
picks), under an open loop of ``--rate`` requests/s for ``--seconds`` after ``--warmup``;
latency counts from each request's scheduled start. The requests are the same for both
models: known users drawn Zipf-like, 5% ids nobody knows.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_neural_serving.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import Server, open_loop, reco_call
from machine import describe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "neural-serving.json"
MODELS = ("als", "two-tower")


def tastebud(home: Path, *arguments: str) -> str:
    """Run one CLI command on ``home``; its standard output."""
    env = {**os.environ, "TASTEBUD_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "tastebud", *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"tastebud {' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def prepare(home: Path, users: int, items: int) -> dict[str, Any]:
    """The world, its events ingested, and one registered version per model."""
    world = home.parent / "world"
    tastebud(home, "datasets", "generate", "--out", str(world), "--users", str(users),
             "--items", str(items), "--days", "30")  # fmt: skip
    tastebud(home, "ingest", str(world))
    versions, seconds = {}, {}
    for model in MODELS:
        started = time.perf_counter()
        versions[model] = tastebud(home, "train", "--model", model).strip().splitlines()[-1]
        seconds[model] = round(time.perf_counter() - started, 1)
    known = pq.read_table(world / "events.parquet", columns=["user_id"]).column("user_id")
    return {
        "versions": versions,
        "train_seconds": seconds,
        "users": sorted(set(known.to_pylist())),
    }


def request_users(known: list[str], count: int, seed: int = 7) -> list[str]:
    """Zipf-like over the known users (hot ones spread by a permutation), 5% unknown ids."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(known))
    weights = 1.0 / np.arange(1, len(known) + 1) ** 0.8
    picked = order[rng.choice(len(known), size=count, p=weights / weights.sum())]
    users = [known[i] for i in picked]
    for n in np.flatnonzero(rng.random(count) < 0.05):
        users[n] = f"nobody-{n}"
    return users


def one_run(home: Path, args: argparse.Namespace, calls: list[Any]) -> dict[str, Any]:
    extra = {"TASTEBUD_SERVING__PRECOMPUTED": "false"}
    with Server(home, args.workers, 500, extra) as server:
        warmup = int(args.rate * args.warmup)
        result = open_loop(server.port, server.key, calls, args.rate, 16, warmup)
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-neural-serving-") as scratch:
        home = Path(scratch) / "home"
        setup = prepare(home, args.users, args.items)
        total = int(args.rate * (args.seconds + args.warmup))
        calls = [reco_call(user, 20, "get") for user in request_users(setup["users"], total)]
        runs: dict[str, list[dict[str, Any]]] = {model: [] for model in MODELS}
        for run in range(args.runs):
            order = MODELS if run % 2 == 0 else MODELS[::-1]
            for model in order:
                tastebud(home, "models", "promote", setup["versions"][model])
                outcome = one_run(home, args, calls)
                print(json.dumps({"run": run, "model": model, **outcome}), flush=True)
                runs[model].append(outcome)
    medians = {
        model: {
            key: statistics.median(r[key] for r in results)
            for key in ("p50_ms", "p95_ms", "p99_ms", "achieved_per_second", "errors")
        }
        for model, results in runs.items()
    }
    document = {
        "benchmark": "neural_serving",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": describe(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "train_seconds": setup["train_seconds"],
        "medians": medians,
        "runs": runs,
    }
    args.out.write_text(json.dumps(document, indent=2))
    print(json.dumps({"medians": medians, "train_seconds": setup["train_seconds"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
