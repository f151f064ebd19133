"""False alarms of the data-quality checks on a clean 30-day simulated stream (issue 19).

A clean world (no seeded problem; ``--trending`` items, the generator's default 5, are real
drift) is stored whole; the checks then run as of every ``--step-hours`` from day 8 (the
first with a full volume baseline) to the end, with a production model retrained daily on
the events before each day (popularity: the reference of drift and cold start, as the
daily train job keeps it). Counts each check's warn / fail / error; a clean stream should
raise no critical failure.

``--seeded`` breaks the same stream with five problems on days of their own
(``tastebud.data.faults``): a schema break, a stalled source, half of one hour's events
lost, reshuffled item popularity, a surge of unknown users. For each it reports when the
check that should catch it first fired, and every alarm outside the problems' reach (the
problem's window and the two days after it, while the judged day and the daily model still
hold it) counts as a false alarm. The daily retraining is skipped after a run with a
blocking failure, as the train job's quality gate does.

    .venv/bin/python benchmarks/bench_data_quality_alarms.py --users 2000 --step-hours 6
    .venv/bin/python benchmarks/bench_data_quality_alarms.py --seeded --step-hours 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
import pyarrow.parquet as pq
from machine import describe

from tastebud.config import load_settings
from tastebud.data import faults
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
REACH = timedelta(days=2)  # how long a problem's effect may last after its window


@dataclass(frozen=True)
class Fault:
    name: str
    check: str  # the check that should catch it
    start: datetime
    end: datetime


def seeded_faults(events: pa.Table, start: datetime) -> list[Fault]:
    """The five problems, each on a day of its own (days counted from the world's start)."""

    def at(day: int, hour: int = 0) -> datetime:
        return start + timedelta(days=day, hours=hour)

    hour = faults.busiest_hour(events, at(17), at(18))
    return [
        Fault("schema break", "schema", at(11, 18), at(12)),
        Fault("stalled source", "freshness", at(14, 12), at(14, 20)),
        Fault("half of one hour lost", "volume", hour, hour + timedelta(hours=1)),
        Fault("item popularity reshuffled", "drift", at(20), at(21)),
        Fault("surge of unknown users", "cold_start", at(24), at(25)),
    ]


def apply_faults(events: pa.Table, seeded: list[Fault]) -> pa.Table:
    breakers = {
        "schema": faults.schema_break,
        "freshness": faults.stalled_source,
        "volume": faults.volume_drop,
        "drift": faults.popularity_shift,
        "cold_start": faults.unknown_user_surge,
    }
    for fault in seeded:
        events = breakers[fault.check](events, fault.start, fault.end)
    return events


def detections(seeded: list[Fault], alarms: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per fault: the first alarm of its check inside its reach, and the delay from onset."""
    rows = []
    for fault in seeded:
        hits = [
            a
            for a in alarms
            if a["check"] == fault.check
            and fault.start < datetime.fromisoformat(str(a["as_of"])) <= fault.end + REACH
        ]
        first = min(hits, key=lambda a: str(a["as_of"])) if hits else None
        delay = (
            (datetime.fromisoformat(str(first["as_of"])) - fault.start).total_seconds() / 3600
            if first
            else None
        )
        rows.append(
            {
                "fault": fault.name,
                "check": fault.check,
                "onset": fault.start.isoformat(),
                "detected": first is not None,
                "first_status": first["status"] if first else None,
                "delay_hours": round(delay, 2) if delay is not None else None,
                "message": first["message"] if first else None,
            }
        )
    return rows


def outside_reach(seeded: list[Fault], alarm: dict[str, object]) -> bool:
    moment = datetime.fromisoformat(str(alarm["as_of"]))
    return all(not (f.start < moment <= f.end + REACH) for f in seeded)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--step-hours", type=int, default=6)
    parser.add_argument("--trending", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--seeded", action="store_true", help="Seed the five problems.")
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
            events = pq.read_table(root / "world" / "events.parquet")
            seeded = seeded_faults(events, spec.start) if args.seeded else []
            stores.events.append_arrow(apply_faults(events, seeded))
            items = [s for s in dataset_sources(root / "world") if s.kind == "items"]
            ingest_sources(items, stores, settings)
            registry = open_registry(settings, stores.artifacts)
            recipe = Configuration(matrix={}, model="popularity", params={})
            moment = spec.start + timedelta(days=8)
            trained_day, gated = None, False
            while moment <= END:
                day = (moment - timedelta(microseconds=1)).date()
                if trained_day != day and not gated:  # the daily train job, before the checks
                    cut = datetime(day.year, day.month, day.day, tzinfo=UTC)
                    log = read_event_store(stores.events, EventQuery(end=cut))
                    result = train(log, configuration=recipe)
                    register_training(result, log, registry, aliases=["production"])
                    trained_day = day
                began = time.perf_counter()
                report = run_checks(stores, settings, as_of=moment)
                gated = bool(report.blocking)  # the train job's quality gate
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
        "seeded": detections(seeded, alarms) if args.seeded else [],
        "false_alarms": {
            status: sum(1 for a in alarms if a["status"] == status and outside_reach(seeded, a))
            for status in ("warn", "fail", "error")
        },
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
