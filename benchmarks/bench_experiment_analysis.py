"""The statistics' share of `tastebud experiments analyze`: ``analyze`` (and the report) on
per-user data already computed, as ``tastebud.experiments.metrics`` or the simulator hands it
over. Two variants, two goals (a mean with CUPED, a ratio with CUPED), two guardrails (a
ratio, and latency p95 over five served lists per user), users spread over 14 days for the
cumulative curve.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_experiment_analysis.py
    .venv/bin/python benchmarks/bench_experiment_analysis.py --users 100000 --repeats 1

Prints one line per size, then the JSON document (``--out`` writes it too).
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from tastebud.config import ExperimentSettings
from tastebud.experiments.analysis import analyze
from tastebud.experiments.definition import Experiment
from tastebud.experiments.report import write_report
from tastebud.experiments.samples import ExperimentData, MetricSample, VariantSample

SETTINGS = ExperimentSettings()
EXPERIMENT = Experiment(
    key="bench",
    variants=[{"name": "control", "weight": 0.5}, {"name": "B", "weight": 0.5}],
    goals=["plays_per_user", "click_through"],
    guardrails=[
        {"metric": "skip_rate", "max_relative_change": 0.1},
        {"metric": "latency_p95", "threshold": 400.0},
    ],
    minimum_effect=0.02,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="100000,1000000", help="users per variant")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the JSON document here")
    return parser.parse_args(argv)


def _arm(rng: np.random.Generator, n: int, lift: float) -> dict[str, VariantSample]:
    taste = rng.gamma(2.0, 2.0, n)
    shown, shown_pre = rng.poisson(20, n) + 1, rng.poisson(20, n) + 1
    day = rng.integers(0, 14, n)
    click = rng.beta(2, 18, n)
    return {
        "plays_per_user": VariantSample(
            numerator=rng.poisson(taste * lift).astype(float),
            pre_numerator=rng.poisson(taste).astype(float),
            first_day=day,
        ),
        "click_through": VariantSample(
            numerator=rng.binomial(shown, np.minimum(click * lift, 1)).astype(float),
            denominator=shown.astype(float),
            pre_numerator=rng.binomial(shown_pre, click).astype(float),
            pre_denominator=shown_pre.astype(float),
            first_day=day,
        ),
        "skip_rate": VariantSample(
            numerator=rng.binomial(shown, 0.3).astype(float), denominator=shown.astype(float)
        ),
        "latency_p95": VariantSample(numerator=np.zeros(n), values=rng.exponential(40, 5 * n)),
    }


def data(n: int) -> ExperimentData:
    rng = np.random.default_rng(n)
    arms = {"control": _arm(rng, n, 1.0), "B": _arm(rng, n, 1.01)}
    metrics = {
        name: MetricSample(name, SETTINGS.metrics[name], {v: arms[v][name] for v in arms})
        for name in arms["control"]
    }
    return ExperimentData(
        key="bench",
        variants=["control", "B"],
        weights=[0.5, 0.5],
        exposed_users={"control": n, "B": n},
        metrics=metrics,
        days=14,
    )


def measure(n: int, repeats: int) -> dict[str, Any]:
    sample = data(n)
    analyses, reports = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        analysis = analyze(EXPERIMENT, sample, SETTINGS)
        analyses.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            write_report(analysis, out)
            reports.append(time.perf_counter() - start)
    return {
        "users_per_variant": n,
        "latency_values": 10 * n,
        "analyze_s": round(statistics.median(analyses), 3),
        "report_s": round(statistics.median(reports), 3),
        "decision": analysis.decision.line,
        "cuped_reduction": {
            r.metric: round(r.comparison.variance_reduction, 3)
            for r in analysis.results
            if r.comparison and r.comparison.variance_reduction is not None
        },
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = []
    for n in (int(value) for value in args.users.split(",")):
        row = measure(n, args.repeats)
        rows.append(row)
        print(
            f"{n:>9,} users/variant: analyze {row['analyze_s']:.2f} s, "
            f"report {row['report_s']:.2f} s ({row['decision']})"
        )
    document = {"machine": describe(), "repeats": args.repeats, "results": rows}
    text = json.dumps(document, indent=2)
    if args.out:  # before printing: a closed pipe must not lose the record
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
