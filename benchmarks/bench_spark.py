"""Benchmark popularity and trending on the local engine against Spark (``local[1]`` and
``local[2]``), side by side over the same embedded store of a generated world.

Each configuration runs in its own process (a Spark master is fixed per JVM), ``--runs``
times, one job after the other, through the job runner (read, compute, write the versioned
table, publish). Spark reads the event log either from a day-partitioned Parquet export
made once beforehand (``lake``: ``[jobs] spark_events_url``, the scale-out layout) or from a
per-run export of the window (``staging``). Spark's session start-up is reported apart: a
scheduler keeps its session, a one-off CLI call pays it.

    .venv/bin/python benchmarks/bench_spark.py                      # generates + ingests ~10M
    .venv/bin/python benchmarks/bench_spark.py --home /tmp/bench-spark/home --runs 3
    .venv/bin/python benchmarks/bench_spark.py --home /tmp/reco/home --configs \
        --reco-users 20000 --runs 1                                 # the recommendations job

CPU seconds count this process and its children (the Spark JVM) through psutil. Prints one
line per run, then one JSON document (for results files).
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
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_jobs import prepare
from machine import describe, process_tree_cpu

from tastebud.config import load_settings
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.jobs import JobRunner, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.stores import open_stores
from tastebud.stores.export import export_events

JOBS = ("popularity", "trending")
CONFIGS = {
    "local": ("local", None, None),
    "spark-1-lake": ("spark", "local[1]", "lake"),
    "spark-2-lake": ("spark", "local[2]", "lake"),
    "spark-2-staging": ("spark", "local[2]", "staging"),
    # the recommendations job (--reco-users): one process against executors
    "reco-local": ("local", None, None),
    "reco-spark-1": ("spark", "local[1]", None),
    "reco-spark-2": ("spark", "local[2]", None),
}
EVENT_CONFIGS = [name for name in CONFIGS if not name.startswith("reco-")]
RECO_CONFIGS = [name for name in CONFIGS if name.startswith("reco-")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a TASTEBUD_HOME with events ingested")
    parser.add_argument("--events-target", type=float, default=1.0e7)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--configs", nargs="*", default=EVENT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument(
        "--reco-users",
        type=int,
        default=0,
        help="also benchmark the recommendations job on a world of this many users",
    )
    parser.add_argument(
        "--reco-configs",
        nargs="*",
        default=RECO_CONFIGS,
        choices=RECO_CONFIGS,
        help="the recommendations job's configurations (at 1M users a run is minutes)",
    )
    parser.add_argument("--worker", choices=list(CONFIGS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> dict[str, object]:
    """One configuration: every job ``--runs`` times; returns its timings."""
    engine, master, mode = CONFIGS[args.worker]
    home = args.home
    jobs: dict[str, object] = {"engine": engine}
    if master is not None:
        jobs["spark_staging_url"] = str(home.parent / "spark-staging")
        if mode == "lake":
            jobs["spark_events_url"] = str(home.parent / "lake")
    settings = load_settings(home=home, spark_master=master or "local[*]", jobs=jobs)
    result: dict[str, object] = {"config": args.worker}
    if master is not None:
        from tastebud.engines.spark import spark_session

        began = time.perf_counter()
        spark_session(master, settings.spark_conf)  # TASTEBUD_SPARK_CONF, as the jobs
        result["session_start_seconds"] = round(time.perf_counter() - began, 2)
    with open_stores(settings) as stores:
        stats = stores.events.stats()
        assert stats.last is not None
        end = stats.last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        history = open_run_history(settings)
        try:
            runner = JobRunner(settings, build_registry(), history, stores=stores)
            jobs_run = ("recommendations",) if args.worker.startswith("reco-") else JOBS
            for job in jobs_run:
                start = build_registry().get(job).schedule.interval_ending(end)[0]
                seconds, cpu, loads = [], [], []
                output: dict[str, object] = {}
                for _ in range(args.runs):
                    loads.append(os.getloadavg()[0])
                    began, cpu_began = time.perf_counter(), process_tree_cpu()
                    outcome = runner.run(job, start, end)
                    seconds.append(time.perf_counter() - began)
                    cpu.append(process_tree_cpu() - cpu_began)
                    output = outcome.output
                    print(
                        f"{args.worker} {job}: {seconds[-1]:.2f} s wall, {cpu[-1]:.2f} s CPU, "
                        f"load {loads[-1]:.1f}",
                        file=sys.stderr,
                    )
                result[job] = {
                    "median_seconds": round(statistics.median(seconds), 2),
                    "runs_seconds": [round(value, 2) for value in seconds],
                    "median_cpu_seconds": round(statistics.median(cpu), 2),
                    "load_average_1m": [round(value, 1) for value in loads],
                    "events": output.get("events"),
                    "version": output.get("version"),
                    "users": output.get("users"),
                    "users_per_second": output.get("users_per_second"),
                }
        finally:
            history.close()
    return result


def prepare_reco(args: argparse.Namespace) -> Path:
    """A home with a world of ``--reco-users`` users and a production model (the ``train``
    job, default configuration), for the recommendations job."""
    home = (args.home or Path(tempfile.mkdtemp(prefix="tastebud-bench-spark-"))).parent / "reco"
    home = home / "home"
    settings = load_settings(home=home, jobs={"train_auto": False})
    with open_stores(settings) as stores:
        if stores.events.count() == 0:
            world = home.parent / "world"
            spec = WorldSpec(users=args.reco_users, items=5_000, days=14, seed=1)
            print(f"generating {args.reco_users:,} users into {world}", file=sys.stderr)
            generate_world(spec, world)
            subprocess.run(
                [sys.executable, "-m", "tastebud", "ingest", str(world)],
                check=True,
                env={"TASTEBUD_HOME": str(home), "PATH": "/usr/bin:/bin"},
                capture_output=True,
            )
        history = open_run_history(settings)
        try:
            runner = JobRunner(settings, build_registry(), history, stores=stores)
            stats = stores.events.stats()
            assert stats.last is not None
            end = stats.last + timedelta(seconds=1)
            outcome = runner.run("train", end - timedelta(days=1), end)
            print(f"train: {outcome.output}", file=sys.stderr)
        finally:
            history.close()
    return home


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return {}
    results: dict[str, object] = {"benchmark": "spark", "machine": describe()}
    results["load_average_before"] = os.getloadavg()
    if not args.configs:  # the recommendations job only: no event-log world to prepare
        return run_configs(args, results, [])
    home = prepare(args)
    lake = home.parent / "lake"
    with open_stores(load_settings(home=home)) as stores:
        results["events_in_store"] = stores.events.count()
        if any(CONFIGS[name][2] == "lake" for name in args.configs):
            began = time.perf_counter()
            exported = export_events(stores.events, str(lake))
            results["export"] = {
                "seconds": round(time.perf_counter() - began, 2),
                "rows": exported.rows,
                "days": len(exported.days),
            }
            print(f"export: {results['export']}", file=sys.stderr)
    return run_configs(args, results, [(name, home) for name in args.configs])


def run_configs(
    args: argparse.Namespace, results: dict[str, object], runs: list[tuple[str, Path]]
) -> dict[str, object]:
    """Each configuration in its own process (a Spark master is fixed per JVM)."""
    if args.reco_users:
        reco_home = prepare_reco(args)
        runs += [(name, reco_home) for name in args.reco_configs]
    for name, where in runs:
        command = [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--home",
            str(where),
            "--runs",
            str(args.runs),
        ]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        for line in done.stderr.splitlines():
            if line.startswith(name):
                print(line, file=sys.stderr)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
