"""The metrics' share of experiment analysis at scale (issue 18): ``experiment_data`` over
10M exposures and 20M events in Parquet, 2 variants, ~1M users; target < 60 s for the whole
analysis (the statistics, ``bench_experiment_analysis.py``, take the rest).

Generates (once, into ``--data``; deterministic from ``--seed``, written in chunks so memory
stays bounded) a 14-day experiment of 1M users on a 50,000-item catalog (5,000 creators):
``--exposures`` served lists (15% of them in the 14 days before the start, outside the
experiment: the pre-period), lists of 0-20 items (1% empty), and ``--events`` events
following the lists (60% name their list in ``context.list_id``, the rest rely on the
time window), with the event schema ``tastebud export events`` writes. Then runs
``experiment_data`` for every default metric, ``--repeats`` times, in a fresh process each
(peak RSS is the analysis's own) and reports wall time, peak RSS and the users per variant.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_experiment_metrics.py \
        --data /tmp/bench-experiments --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from machine import describe

from tastebud.config import ExperimentSettings
from tastebud.experiments.definition import Experiment
from tastebud.experiments.metrics import MEMORY_MB, experiment_data
from tastebud.schemas import EVENT_SCHEMA

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 14
PRE_DAYS = 14
CHUNK = 500_000
ITEMS = 50_000
CREATORS = 5_000
TYPES = np.array(["play", "click", "skip", "like", "purchase"])
TYPE_SHARES = [0.5, 0.25, 0.15, 0.07, 0.03]
DAY_US = 86_400_000_000
EXPOSURE_TYPE = pa.schema(
    [
        ("list_id", pa.string()),
        ("served_at", pa.timestamp("us", tz="UTC")),
        ("experiment", pa.string()),
        ("variant", pa.string()),
        ("user_id", pa.string()),
        ("session_id", pa.string()),
        ("items", pa.list_(pa.string())),
        ("model_version", pa.string()),
        ("latency_ms", pa.float64()),
        ("degraded", pa.bool_()),
    ]
)


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _exposures(rng: np.random.Generator, first: int, count: int, args: argparse.Namespace):
    """One chunk of exposures, in time order, and what its events need."""
    weights = np.asarray(args._user_weights)
    users = rng.choice(args.users, size=count, p=weights)
    pre = rng.random(count) < 0.15
    begin = int((START - timedelta(days=PRE_DAYS)).timestamp() * 1e6)
    offset = np.where(
        pre,
        rng.random(count) * PRE_DAYS * DAY_US,
        PRE_DAYS * DAY_US + rng.random(count) * DAYS * DAY_US,
    ).astype(np.int64)
    order = np.argsort(offset)
    users, pre, served = users[order], pre[order], begin + offset[order]
    lengths = np.where(rng.random(count) < 0.01, 0, rng.integers(5, 21, size=count))
    item_codes = np.minimum(rng.zipf(1.3, size=int(lengths.sum())) - 1, ITEMS - 1)
    items = pa.ListArray.from_arrays(
        pa.array(np.r_[0, np.cumsum(lengths)].astype(np.int32)),
        args._item_names.take(pa.array(item_codes)),
    )
    variant = np.where(users % 2 == 0, "control", "treatment")
    table = pa.table(
        {
            "list_id": _ids("L", np.arange(first, first + count)),
            "served_at": pa.array(served, pa.timestamp("us", tz="UTC")),
            "experiment": pa.array(np.where(pre, None, "exp"), pa.string()),
            "variant": pa.array(np.where(pre, None, variant), pa.string()),
            "user_id": _ids("u", users),
            "session_id": pa.nulls(count, pa.string()),
            "items": items,
            "model_version": pa.array(["m1"] * count),
            "latency_ms": rng.lognormal(3.3, 0.4, size=count),
            "degraded": np.zeros(count, dtype=bool),
        },
        schema=EXPOSURE_TYPE,
    )
    return table, users, served


def _events(rng, first: int, count: int, exposures: pa.Table, users, served) -> pa.Table:
    """``count`` events following random lists of the chunk."""
    source = rng.integers(0, exposures.num_rows, size=count)
    stamps = served[source] + rng.exponential(3_600e6, size=count).astype(np.int64)
    kinds = TYPES[rng.choice(len(TYPES), size=count, p=TYPE_SHARES)]
    named = rng.random(count) < 0.6
    list_ids = exposures.column("list_id").take(pa.array(source))
    context = pc.if_else(
        pa.array(named),
        pc.binary_join_element_wise('{"list_id":"', list_ids, '"}', ""),
        pa.nulls(count, pa.string()),
    )
    days = stamps // DAY_US
    return pa.table(
        {
            "event_id": _ids("e", np.arange(first, first + count)),
            "user_id": _ids("u", users[source]),
            "item_id": _ids("i", rng.integers(0, ITEMS, size=count)),
            "event_type": pa.array(kinds),
            "value": pa.array(
                np.where(kinds == "play", rng.integers(10, 300, size=count), np.nan),
                from_pandas=True,
            ),
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "session_id": _ids("s", users[source] * 1000 + days % 1000),
            "device_type": pa.array(["web"] * count),
            "locale": pa.array(["en-US"] * count),
            "schema_version": pa.array(np.full(count, 2, dtype=np.int8)),
            "context": context,
            "received_at": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        },
        schema=EVENT_SCHEMA,
    ).sort_by("timestamp")


def generate(args: argparse.Namespace) -> dict[str, float]:
    """Write the world under ``args.data`` (exposures/, events/, catalog.parquet)."""
    began = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    data = Path(args.data)
    (data / "exposures").mkdir(parents=True, exist_ok=True)
    (data / "events").mkdir(parents=True, exist_ok=True)
    args._item_names = _ids("i", np.arange(ITEMS))
    creators = _ids("c", rng.integers(0, CREATORS, size=ITEMS))
    pq.write_table(
        pa.table({"item_id": args._item_names, "creator": creators}), data / "catalog.parquet"
    )
    activity = rng.lognormal(0, 1, size=args.users)
    args._user_weights = activity / activity.sum()
    chunks = -(-args.exposures // CHUNK)
    per_chunk_events = args.events // chunks
    with (
        pq.ParquetWriter(data / "exposures" / "part-0.parquet", EXPOSURE_TYPE) as exposure_writer,
        pq.ParquetWriter(data / "events" / "part-0.parquet", EVENT_SCHEMA) as event_writer,
    ):
        for chunk in range(chunks):
            count = min(CHUNK, args.exposures - chunk * CHUNK)
            table, users, served = _exposures(rng, chunk * CHUNK, count, args)
            exposure_writer.write_table(table, row_group_size=CHUNK)
            events = _events(rng, chunk * per_chunk_events, per_chunk_events, table, users, served)
            event_writer.write_table(events, row_group_size=CHUNK)
    return {"generate_seconds": round(time.perf_counter() - began, 1)}


def analyze(args: argparse.Namespace) -> dict[str, object]:
    """One timed ``experiment_data`` run (in this process: its peak RSS is the run's)."""
    data = Path(args.data)
    catalog = pq.read_table(data / "catalog.parquet")
    creators = dict(
        zip(catalog["item_id"].to_pylist(), catalog["creator"].to_pylist(), strict=True)
    )
    experiment = Experiment(
        key="exp",
        variants=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        goals=["click_through"],
        start=START,
    )
    began, cpu = time.perf_counter(), time.process_time()
    result = experiment_data(
        experiment,
        ExperimentSettings(pre_period_days=PRE_DAYS),
        data / "events",
        data / "exposures",
        catalog_size=ITEMS,
        now=START + timedelta(days=DAYS),
        creators=creators,
        memory_mb=args.memory_mb or None,
    )
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    click = result.metrics["click_through"].variants
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "users": result.exposed_users,
        "multiple_variant_users": result.multiple_variant_users,
        "click_through": {
            name: round(float(s.numerator.sum() / s.denominator.sum()), 5)
            for name, s in click.items()
        },
        "coverage": {n: s.distinct for n, s in result.metrics["coverage"].variants.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-experiments"))
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--memory-mb", type=int, default=MEMORY_MB, help="DuckDB's memory limit (0: its default)"
    )
    parser.add_argument("--once", action="store_true", help="one analysis, JSON on stdout")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.once:
        print(json.dumps(analyze(args)))
        return {}
    setup: dict[str, float] = {}
    if not (args.data / "events").is_dir():
        setup = generate(args)
    runs = []
    for _ in range(args.repeats):
        command = [sys.executable, __file__, "--data", str(args.data), "--once"]
        command += ["--memory-mb", str(args.memory_mb)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(output.splitlines()[-1]))
    document: dict[str, object] = {
        "machine": describe(),
        "exposures": args.exposures,
        "events": args.events,
        "memory_mb": args.memory_mb or None,
        **setup,
        "seconds": [run["seconds"] for run in runs],
        "median_seconds": statistics.median(run["seconds"] for run in runs),
        "median_cpu_seconds": statistics.median(run["cpu_seconds"] for run in runs),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "last_run": runs[-1],
    }
    print(json.dumps(document, indent=2))
    if args.out:
        args.out.write_text(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
