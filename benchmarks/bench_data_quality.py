"""Data-quality checks over a large generated store (issue 19: under 60 s at 20M events).

Generates a 30-day world (``--users`` and ``--items`` set its size; 160,000 and 50,000
make the 20M-event world of bench_generate.py), stores it in a fresh embedded store,
registers a production model (popularity, trained on the week before the last day: the
drift and cold-start reference), then times ``run_checks`` as of the world's end,
``--repeats`` times (median). The checks read the judged day, the 7 days before it and the
reference day, so their cost grows with the events in those days; for a smaller world the
report also extrapolates linearly to a 20M-event store of the same shape.

    .venv/bin/python benchmarks/bench_data_quality.py --users 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
import pyarrow.parquet as pq
from machine import describe

from tastebud.config import load_settings
from tastebud.data.interactions import read_event_store
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.registry import open_registry
from tastebud.stores import EventQuery, open_stores
from tastebud.training.configuration import Configuration
from tastebud.training.pipeline import register_training, train

TARGET_EVENTS = 20_000_000
END = datetime(2026, 3, 9, tzinfo=UTC)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=160_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    spec = WorldSpec.ending(END, users=args.users, items=args.items, days=30, seed=7)
    with tempfile.TemporaryDirectory(prefix="bench-dq-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        generate_world(spec, root / "world")
        settings = load_settings(home=root / "home")
        with open_stores(settings) as stores:
            for batch in pq.ParquetFile(root / "world" / "events.parquet").iter_batches(1_000_000):
                stores.events.append_arrow(pa.Table.from_batches([batch]))
            events = stores.events.count()
            cut = END - timedelta(days=1)
            log = read_event_store(
                stores.events, EventQuery(start=cut - timedelta(days=7), end=cut)
            )
            result = train(
                log, configuration=Configuration(matrix={}, model="popularity", params={})
            )
            register_training(
                result, log, open_registry(settings, stores.artifacts), aliases=["production"]
            )
            del log, result
            setup = time.perf_counter() - started
            from tastebud.quality.runner import run_checks

            timings, report = [], None
            for _ in range(args.repeats):
                began = time.perf_counter()
                report = run_checks(stores, settings, as_of=END)
                timings.append(time.perf_counter() - began)
    assert report is not None
    median = statistics.median(timings)
    document: dict[str, object] = {
        "machine": describe(),
        "events": events,
        "users": args.users,
        "items": args.items,
        "setup_seconds": round(setup, 1),
        "check_seconds": [round(t, 2) for t in timings],
        "median_seconds": round(median, 2),
        "extrapolated_20m_seconds": round(median * TARGET_EVENTS / events, 1),
        "statuses": {check.check: check.status for check in report.checks},
    }
    print(json.dumps(document, indent=2))
    if args.out:
        args.out.write_text(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
