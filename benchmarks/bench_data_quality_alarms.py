"""False alarms of the data-quality checks on a clean 30-day simulated stream (issue 19).

A clean world (no seeded problem; ``--trending`` items, the generator's default 5, are real
drift) is stored whole; the checks then run as of every ``--step-hours`` from day 8 (the
first with a full volume baseline) to the end, with a production model retrained daily on
the events before each day (popularity: the reference of drift and cold start, as the
daily train job keeps it). Counts each check's warn / fail / error; a clean stream should
raise no critical failure.

    .venv/bin/python benchmarks/bench_data_quality_alarms.py --users 2000 --step-hours 6
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow.parquet as pq
from machine import describe

from tastebud.config import load_settings
from tastebud.data.bulk_load import ingest_sources
from tastebud.data.interactions import read_event_store
from tastebud.data.loaders.datasets import dataset_sources
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.quality.runner import run_checks
from tastebud.registry import open_registry
from tastebud.stores import EventQuery, open_stores
from tastebud.training.configuration import Configuration
from tastebud.training.pipeline import register_training, train

END = datetime(2026, 3, 9, tzinfo=UTC)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--step-hours", type=int, default=6)
    parser.add_argument("--trending", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    spec = WorldSpec.ending(
        END, users=args.users, items=1000, days=30, seed=args.seed, trending_items=args.trending
    )
    counts: Counter[tuple[str, str]] = Counter()
    alarms: list[dict[str, object]] = []
    runs, seconds = 0, 0.0
    with tempfile.TemporaryDirectory(prefix="bench-dq-alarms-") as scratch:
        root = Path(scratch)
        generate_world(spec, root / "world")
        settings = load_settings(home=root / "home")
        with open_stores(settings) as stores:
            stores.events.append_arrow(pq.read_table(root / "world" / "events.parquet"))
            items = [s for s in dataset_sources(root / "world") if s.kind == "items"]
            ingest_sources(items, stores, settings)
            registry = open_registry(settings, stores.artifacts)
            recipe = Configuration(matrix={}, model="popularity", params={})
            moment = spec.start + timedelta(days=8)
            trained_day = None
            while moment <= END:
                day = (moment - timedelta(microseconds=1)).date()
                if trained_day != day:  # the daily train job, before the day's checks
                    cut = datetime(day.year, day.month, day.day, tzinfo=UTC)
                    log = read_event_store(stores.events, EventQuery(end=cut))
                    result = train(log, configuration=recipe)
                    register_training(result, log, registry, aliases=["production"])
                    trained_day = day
                began = time.perf_counter()
                report = run_checks(stores, settings, as_of=moment)
                seconds += time.perf_counter() - began
                runs += 1
                for check in report.checks:
                    counts[(check.check, check.status)] += 1
                    if check.status != "pass":
                        alarms.append(
                            {
                                "as_of": moment.isoformat(),
                                "check": check.check,
                                "status": check.status,
                                "critical": check.critical,
                                "message": check.message,
                            }
                        )
                moment += timedelta(hours=args.step_hours)
    by_check: dict[str, dict[str, int]] = {}
    for (check, status), count in sorted(counts.items()):
        by_check.setdefault(check, {})[status] = count
    document: dict[str, object] = {
        "machine": describe(),
        "world": {"users": args.users, "items": 1000, "days": 30, "trending": args.trending},
        "runs": runs,
        "mean_check_seconds": round(seconds / max(runs, 1), 2),
        "critical_failures": sum(1 for a in alarms if a["critical"] and a["status"] == "fail"),
        "by_check": by_check,
        "alarms": alarms,
    }
    print(json.dumps({k: v for k, v in document.items() if k != "alarms"}, indent=2))
    for alarm in alarms:
        print(f"{alarm['as_of']} {alarm['check']} {alarm['status']}: {alarm['message']}")
    if args.out:
        args.out.write_text(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
