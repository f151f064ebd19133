"""Assignment cost: what ``ExperimentBook.assign`` (and the serving plan around it) adds to a
recommendation request, with 1, 5 and 20 running experiments.

Two layouts per count, each over ``--units`` distinct user ids (so nothing is cached):
* ``overlapping``: every experiment outside any namespace at ``--traffic`` (default 5%) of
  users, so most units are hashed against every experiment before falling through (the worst
  case for a unit in none);
* ``namespaced``: the experiments split one namespace into equal disjoint ranges at full
  traffic, so every unit enters exactly one, after the namespace checks before it.
Each call is timed alone (``perf_counter_ns``); p50/p95/p99 in microseconds. ``plan`` is
``ExperimentServing.plan``: the book's assignment plus resolving the variant's ranking
settings (what the request path runs). Target: p95 <= 100 us added to a request. Writes
``results/assignment.json``; exits 1 when a target is missed.

Run:  .venv/bin/python benchmarks/bench_assignment.py [--units 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

from tastebud.config import load_settings
from tastebud.experiments.assignment import ExperimentBook
from tastebud.experiments.definition import Experiment
from tastebud.ranking.experiment_serving import ExperimentServing
from tastebud.ranking.snapshot import Snapshot

RESULTS = Path(__file__).resolve().parent / "results" / "assignment.json"
TARGET_P95_US = 100.0
COUNTS = (1, 5, 20)


def experiments(count: int, layout: str, traffic: float) -> list[Experiment]:
    made = []
    for n in range(count):
        document: dict[str, Any] = {
            "key": f"exp-{n:02d}",
            "variants": [
                {"name": "control", "weight": 0.5},
                {"name": "treatment", "weight": 0.5, "ranking": {"mmr": {"diversity": 0.5}}},
            ],
            "goals": ["ctr"],
            "status": "running",
        }
        if layout == "overlapping":
            document["traffic"] = traffic
        else:
            document["namespace"] = {
                "name": "home",
                "start": n / count,
                "end": (n + 1) / count if n + 1 < count else 1.0,
            }
        made.append(Experiment.model_validate(document))
    return made


def timed(call: Any, units: list[str]) -> dict[str, float]:
    samples = []
    clock = time.perf_counter_ns
    for unit in units:
        started = clock()
        call(unit)
        samples.append((clock() - started) / 1000)
    samples.sort()

    def at(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(q * len(samples)))], 2)

    return {"p50_us": at(0.5), "p95_us": at(0.95), "p99_us": at(0.99), "max_us": at(1.0)}


def measure(count: int, layout: str, traffic: float, units: list[str]) -> dict[str, Any]:
    settings = load_settings()
    book = ExperimentBook(experiments(count, layout, traffic), settings.ranking)
    # No variant names a model, so the variants' model cache is never asked.
    serving = ExperimentServing(settings.ranking, None, source=lambda: book)  # type: ignore[arg-type]
    snapshot = Snapshot.build(None, None, [], catalog_loaded=False)
    entered = sum(book.assign(unit) is not None for unit in units)
    timed(book.assign, units[:1_000])  # warm up
    assign = timed(book.assign, units)
    plan = timed(lambda unit: serving.plan(unit, snapshot), units)
    return {
        "experiments": count,
        "layout": layout,
        "entered_share": round(entered / len(units), 3),
        "assign": assign,
        "plan": plan,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--traffic", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    machine = describe()
    print(json.dumps(machine), flush=True)
    rows = []
    for run in range(args.runs):
        units = [f"user-{run}-{n}" for n in range(args.units)]
        for layout in ("overlapping", "namespaced"):
            for count in COUNTS:
                row = {"run": run, **measure(count, layout, args.traffic, units)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    medians = []
    for layout in ("overlapping", "namespaced"):
        for count in COUNTS:
            mine = [r for r in rows if r["layout"] == layout and r["experiments"] == count]
            medians.append(
                {
                    "layout": layout,
                    "experiments": count,
                    "entered_share": mine[0]["entered_share"],
                    **{
                        f"{what}_{q}": round(statistics.median(r[what][q] for r in mine), 2)
                        for what in ("assign", "plan")
                        for q in ("p50_us", "p95_us", "p99_us")
                    },
                }
            )
    missed = [
        f"{m['layout']}/{m['experiments']}" for m in medians if m["plan_p95_us"] > TARGET_P95_US
    ]
    document = {
        "benchmark": "assignment",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "target_p95_us": TARGET_P95_US,
        "medians": medians,
        "missed": missed,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(
        "\n| layout | experiments | entered | assign p50 us | assign p95 us | plan p50 us |"
        " plan p95 us | plan p99 us |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in medians:
        print(
            f"| {m['layout']} | {m['experiments']} | {m['entered_share']:.0%} |"
            f" {m['assign_p50_us']} | {m['assign_p95_us']} | {m['plan_p50_us']} |"
            f" {m['plan_p95_us']} | {m['plan_p99_us']} |"
        )
    print(json.dumps({"missed": missed}))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
