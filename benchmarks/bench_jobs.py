"""Benchmark the popularity and trending jobs over a ~10M-event embedded store.

Each job runs end to end through the job runner (read the window from the event store,
compute, write the versioned table, publish), ``--runs`` times; medians are quoted. Three
cases: ``popularity`` (its 90-day window covers the whole 30-day world: every event),
``trending`` at default settings (24 h recent + 7 days baseline: ~8/30 of the events) and
``trending-all`` (a 29-day baseline, so the detector reads every event too).

    .venv/bin/python benchmarks/bench_jobs.py                       # generates + ingests ~10M
    .venv/bin/python benchmarks/bench_jobs.py --home /tmp/bench10m/home --runs 5

Generating and ingesting 10M events takes a few minutes; pass ``--home`` to reuse a store.
Prints one line per run (wall and CPU seconds, the 1-minute load average), then one JSON
document (for results files). On a shared machine the CPU seconds are the stable number:
on an idle 2-core machine the wall time is roughly between CPU/2 and CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from tastebud.config import load_settings
from tastebud.data.synthetic import WorldSpec, estimate_events, generate_world
from tastebud.jobs import JobRunner, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.stores import open_stores

CASES = {
    "popularity": ("popularity", {}),
    "trending": ("trending", {}),
    "trending-all": ("trending", {"baseline_days": 29}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a TASTEBUD_HOME with events ingested")
    parser.add_argument("--events-target", type=float, default=1.0e7)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> Path:
    """An embedded home holding ~events-target events (generated and ingested if needed)."""
    home = args.home or Path(tempfile.mkdtemp(prefix="tastebud-bench-jobs-", dir="/tmp")) / "home"
    with open_stores(load_settings(home=home)) as stores:
        if stores.events.count() > 0:
            return home
    spec = WorldSpec(users=1000, items=args.items, days=30, seed=0)
    per_user = estimate_events(spec) / spec.users
    spec = WorldSpec(
        users=max(1, math.ceil(args.events_target / per_user)), items=args.items, days=30, seed=0
    )
    world = home.parent / "world"
    print(f"generating ~{estimate_events(spec):,} events into {world}", file=sys.stderr)
    generate_world(spec, world)
    print(f"ingesting into {home}", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "tastebud", "ingest", str(world)],
        check=True,
        env={"TASTEBUD_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    return home


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads): what the job costs,
    whatever else the shared machine is doing."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    home = prepare(args)
    base = load_settings(home=home)
    with open_stores(base) as stores:
        stats = stores.events.stats()
    assert stats.last is not None
    end = stats.last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    results: dict[str, object] = {
        "benchmark": "jobs",
        "events_in_store": stats.events,
        "interval_end": end.isoformat(),
        "machine": describe(),
    }
    for case in args.cases:
        job, trending = CASES[case]
        settings = load_settings(home=home, trending=trending)
        history = open_run_history(settings)
        seconds: list[float] = []
        cpu: list[float] = []
        loads: list[float] = []
        output: dict[str, object] = {}
        try:
            with open_stores(settings) as stores:
                runner = JobRunner(settings, build_registry(), history, stores=stores)
                start = build_registry().get(job).schedule.interval_ending(end)[0]
                for _ in range(args.runs):
                    load = os.getloadavg()[0]
                    began, cpu_began = time.perf_counter(), cpu_seconds()
                    outcome = runner.run(job, start, end)
                    seconds.append(time.perf_counter() - began)
                    cpu.append(cpu_seconds() - cpu_began)
                    loads.append(load)
                    output = outcome.output
                    print(
                        f"{case}: {seconds[-1]:.2f} s wall, {cpu[-1]:.2f} s CPU, "
                        f"load {load:.1f} {json.dumps(output)}",
                        file=sys.stderr,
                    )
        finally:
            history.close()
        results[case] = {
            "median_seconds": round(statistics.median(seconds), 2),
            "runs_seconds": [round(s, 2) for s in seconds],
            "median_cpu_seconds": round(statistics.median(cpu), 2),
            "load_average_1m": [round(load, 1) for load in loads],
            "events_read": output.get("events"),
        }
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
