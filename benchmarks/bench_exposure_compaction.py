"""One day of the embedded exposure log as 20,000 small files (4 workers flushing) against
the same day compacted (``tastebud.experiments.exposure_compaction``): listing, ``scan``,
and the experiment analysis (``experiment_data``, every default metric) through the log's
``scan`` and through the folder as a Parquet source (DuckDB), plus what compaction costs.

Generates (deterministic from ``--seed``) ``--files`` files of ``--rows`` exposures each, in
the log's own layout and names, and ``--events`` events following the lists (60% name their
list); copies the folder and compacts the copy. Each measure is the median of ``--repeats``
runs, the two layouts alternating; the page cache is warm for both (the same bytes, read
the same way).

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_exposure_compaction.py \
        --data /tmp/bench-exposure-compaction
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from machine import describe

from tastebud.config import ExperimentSettings
from tastebud.experiments.definition import Experiment
from tastebud.experiments.exposure import EXPOSURE_SCHEMA
from tastebud.experiments.exposure_compaction import compact
from tastebud.experiments.exposure_parquet import ParquetExposureLog
from tastebud.schemas import EVENT_SCHEMA

DAY = datetime(2026, 3, 1, tzinfo=UTC)
WORKERS = 4
USERS = 100_000
ITEMS = 20_000


def _exposures(rng: np.random.Generator, count: int) -> pa.Table:
    served = np.sort(rng.integers(0, 86_400_000_000, count))
    users = rng.integers(0, USERS, count)
    lengths = rng.integers(0, 11, count)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    items = pa.array([f"i{k}" for k in rng.integers(0, ITEMS, int(offsets[-1]))])
    ts = pa.array(served + int(DAY.timestamp() * 1_000_000), pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "list_id": pa.array([f"l{n}" for n in range(count)]),
            "served_at": ts,
            "experiment": pa.array(["exp"] * count),
            "variant": pa.array(np.where(users % 2 == 0, "control", "treatment")),
            "user_id": pa.array([f"u{u}" for u in users]),
            "session_id": pa.nulls(count, pa.string()),
            "items": pa.ListArray.from_arrays(pa.array(offsets), items),
            "model_version": pa.array(["m1"] * count),
            "latency_ms": pa.array(rng.gamma(2.0, 10.0, count)),
            "degraded": pa.array(np.zeros(count, dtype=bool)),
        }
    ).cast(EXPOSURE_SCHEMA)


def _events(rng: np.random.Generator, exposures: pa.Table, count: int) -> pa.Table:
    picked = rng.integers(0, exposures.num_rows, count)
    served = exposures["served_at"].combine_chunks().cast(pa.int64()).to_numpy()[picked]
    named = rng.random(count) < 0.6
    lists = exposures["list_id"].combine_chunks().take(pa.array(picked)).to_pylist()
    return pa.table(
        {
            "event_id": [f"e{n}" for n in range(count)],
            "user_id": exposures["user_id"].combine_chunks().take(pa.array(picked)),
            "item_id": [f"i{k}" for k in rng.integers(0, ITEMS, count)],
            "event_type": rng.choice(["play", "click", "skip", "like"], count),
            "value": rng.random(count) * 100,
            "timestamp": pa.array(served + rng.integers(1, 600_000_000, count), pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "session_id": pa.nulls(count, pa.string()),
            "device_type": pa.nulls(count, pa.string()),
            "locale": pa.nulls(count, pa.string()),
            "schema_version": pa.array(np.full(count, 2, dtype=np.int8)),
            "context": [
                json.dumps({"list_id": lid}) if keep else None
                for lid, keep in zip(lists, named, strict=True)
            ],
            "received_at": pa.nulls(count, pa.timestamp("us", tz="UTC")),
        }
    ).cast(EVENT_SCHEMA)


def generate(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(args.seed)
    small, compacted = args.data / "small", args.data / "compacted"
    events_file = args.data / "events.parquet"
    shutil.rmtree(args.data, ignore_errors=True)
    folder = small / f"date={DAY.date().isoformat()}"
    folder.mkdir(parents=True)
    table = _exposures(rng, args.files * args.rows)
    for index in range(args.files):
        worker, seq = index % WORKERS, index // WORKERS + 1
        name = f"part-{1000 + worker}-{worker:08x}-{seq:08d}.parquet"
        pq.write_table(table.slice(index * args.rows, args.rows), folder / name, compression="zstd")
    pq.write_table(_events(rng, table, args.events), events_file)
    shutil.copytree(small, compacted)
    return small, compacted, events_file


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measures(root: Path, events: pa.Table) -> dict[str, float]:
    """One run of each measure over the log at ``root`` (seconds)."""
    log = ParquetExposureLog(root)
    since, until = DAY, DAY + timedelta(days=1)
    experiment = Experiment(
        key="exp",
        variants=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        goals=["click_through"],
        start=DAY,
    )
    settings = ExperimentSettings(pre_period_days=0)

    def analysis(exposures: object) -> None:
        # lazy: the metrics load DuckDB; the generation above does not need it
        from tastebud.experiments.metrics import experiment_data

        experiment_data(experiment, settings, events, exposures, catalog_size=ITEMS, now=until)

    return {
        "list_s": _timed(lambda: log.files(since, until)),
        "scan_s": _timed(lambda: log.scan(since, until)),
        "analysis_scan_s": _timed(lambda: analysis(log.scan)),
        "analysis_folder_s": _timed(lambda: analysis(str(root))),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-exposure-compaction"))
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    machine = describe()
    print(json.dumps(machine), flush=True)
    started = time.perf_counter()
    small, compacted, events_file = generate(args)
    generated_s = time.perf_counter() - started
    compaction_s = _timed(lambda: compact(compacted, min_age_seconds=0, grace_seconds=0))
    cleanup_s = _timed(lambda: compact(compacted, min_age_seconds=0, grace_seconds=0))
    events = pq.read_table(events_file)
    runs: dict[str, list[dict[str, float]]] = {"small": [], "compacted": []}
    for repeat in range(args.repeats):
        for layout, root in (("small", small), ("compacted", compacted)):
            runs[layout].append(measures(root, events))
            print(repeat, layout, json.dumps(runs[layout][-1]), flush=True)
    medians = {
        layout: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for layout, rows in runs.items()
    }
    result = {
        "machine": machine,
        "files": args.files,
        "rows": args.files * args.rows,
        "events": args.events,
        "generated_s": round(generated_s, 1),
        "compaction_s": round(compaction_s, 2),
        "delete_inputs_s": round(cleanup_s, 2),
        "files_after": sum(1 for _ in compacted.rglob("*.parquet")),
        "bytes": {
            layout: sum(p.stat().st_size for p in root.rglob("*.parquet"))
            for layout, root in (("small", small), ("compacted", compacted))
        },
        "median": {
            layout: {k: round(v, 4) for k, v in row.items()} for layout, row in medians.items()
        },
        "ratio_small_to_compacted": {
            k: round(medians["small"][k] / medians["compacted"][k], 1) for k in medians["small"]
        },
        "runs": runs,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
