"""Exposure logging's CPU per served list, in process: what the request path pays
(``ExperimentServing.expose``: a list id, the record, one queue append) and what the writer
thread pays per row (a batch of ``--batch`` rows written by ``flush``, in thread CPU time),
for the embedded (Parquet) and the PostgreSQL backends.

Against the HTTP serving benchmark (``bench_serving.py --exposures both``), whose p95 on a
shared 2-core machine moves by more than the effect, these are CPU times that a busy
machine barely changes: their sum over a request's CPU bounds what logging can add.
Writes ``results/exposures.json``.

Run:  .venv/bin/python benchmarks/bench_exposures.py [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

from tastebud.config import load_settings
from tastebud.experiments.exposure import Exposure
from tastebud.experiments.exposure_log import ExposureLog
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.ranking.experiment_serving import ExperimentServing, Plan, new_list_id
from tastebud.stores import open_database

RESULTS = Path(__file__).resolve().parent / "results" / "exposures.json"
ITEMS = [f"i{n}" for n in range(1_000, 1_020)]  # a k=20 list
PLAN = Plan("blend", "treatment", True)


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)

    def at(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(q * len(samples)))], 2)

    return {"p50_us": at(0.5), "p95_us": at(0.95), "p99_us": at(0.99)}


def expose_cost(log: ExposureLog | None, calls: int) -> dict[str, float]:
    """Per call of ``expose`` (the request path), in microseconds."""
    serving = ExperimentServing(load_settings().ranking, None, exposures=log)  # type: ignore[arg-type]
    clock = time.perf_counter_ns
    samples = []
    for n in range(calls):
        started = clock()
        serving.expose(
            PLAN,
            user_id=f"u{n}",
            session_id=None,
            items=ITEMS,
            model_version="20261207T063006Z-df353f",
            latency_ms=2.5,
            degraded=False,
        )
        samples.append((clock() - started) / 1000)
    return percentiles(samples)


def writer_cost(log: ExposureLog, batches: int) -> dict[str, float]:
    """Thread CPU and wall time per written row: ``batches`` full batches, each written as
    the writer thread writes it (``_write``: one backend write of the batch)."""
    cpu, wall = [], []
    for batch in range(batches):
        rows = [
            Exposure(
                list_id=new_list_id(),
                served_at=datetime.now(UTC),
                experiment="blend",
                variant="treatment",
                user_id=f"u{batch}-{n}",
                session_id=None,
                items=tuple(ITEMS),
                model_version="20261207T063006Z-df353f",
                latency_ms=2.5,
            )
            for n in range(log.batch)
        ]
        started_cpu, started = time.thread_time(), time.perf_counter()
        log._write(rows)
        cpu.append((time.thread_time() - started_cpu) / len(rows) * 1e6)
        wall.append((time.perf_counter() - started) / len(rows) * 1e6)
    return {
        "cpu_us_per_row": round(statistics.median(cpu), 2),
        "wall_us_per_row": round(statistics.median(wall), 2),
    }


def backend(url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(
        experiments={"exposure_batch": args.batch, "exposure_flush_seconds": 60.0}
    )
    with open_database(url) as database:
        log = open_exposure_log(settings, database)
        try:
            log.capacity = args.calls + args.batch  # nothing dropped while measuring
            appended = expose_cost(log, args.calls)
            log.flush()
            written = writer_cost(log, args.batches)
        finally:
            log.close()
    return {"expose": appended, "writer": written}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "TASTEBUD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test"
        ),
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    machine = describe()
    print(json.dumps(machine), flush=True)
    results: dict[str, Any] = {"off": {"expose": expose_cost(None, args.calls)}}
    with tempfile.TemporaryDirectory(prefix="bench-exposures-") as scratch:
        results["embedded"] = backend(f"embedded://{scratch}/db", args)
    results["postgres"] = backend(args.postgres, args)
    for name, result in results.items():
        print(name, json.dumps(result), flush=True)
    document = {
        "benchmark": "exposures",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {k: str(v) for k, v in vars(args).items() if k != "postgres"},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
