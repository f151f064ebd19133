"""Trend recovery on the quickstart world (``make run``): does trending find the trends the
generator injected (truth.json)?

Two measurements:

1. The sweep (``tastebud.trending.evaluation``): for each seed, the quickstart spec
   (2,000 users, 3,000 items, 30 days, 8 trends in the 95th-99th popularity percentile, two
   starting on the last day) ending at ``--end``; the detector at default settings at every
   hourly tick (the trending job's schedule) from the first full window to the end. Precision
   over all flags, recall over the trends with a clean baseline.
2. End to end (``--quickstart``): ``tastebud quickstart --no-serve`` in a fresh home, then
   the list the trending job published, against the trends active in its recent window.

    .venv/bin/python benchmarks/bench_trending.py                       # seeds 0-4, hourly
    .venv/bin/python benchmarks/bench_trending.py --seeds 0 --step-hours 6 --quickstart

Prints one line per seed, then the JSON document (``--out`` writes it too).
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from tastebud.cli.quickstart import TRENDS
from tastebud.config import TrendingSettings, default_event_types
from tastebud.data.synthetic import WorldSpec, generate_world, now_minute
from tastebud.trending.evaluation import (
    active_trends,
    load_world,
    trend_recovery,
)

WEIGHTS = {name: spec.weight for name, spec in default_event_types().items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--step-hours", type=float, default=1.0)
    parser.add_argument("--end", help="ISO-8601 end of the worlds (default: now, to the minute)")
    parser.add_argument("--quickstart", action="store_true", help="also run quickstart (seed 0)")
    parser.add_argument("--out", type=Path, help="write the JSON document here")
    return parser.parse_args(argv)


def sweep(seed: int, end: datetime, step_hours: float) -> dict[str, Any]:
    spec = WorldSpec.ending(end, users=2000, items=3000, days=30, seed=seed, **TRENDS)
    with tempfile.TemporaryDirectory() as folder:
        generate_world(spec, Path(folder))
        world = load_world(Path(folder), WEIGHTS)
        started = time.perf_counter()
        result = trend_recovery(world, TrendingSettings(), step_hours)
        seconds = time.perf_counter() - started
    return {"seed": seed, "world_id": spec.world_id, **result.as_dict(), "seconds": seconds}


def end_to_end(end: datetime) -> dict[str, Any]:
    """quickstart --no-serve in a fresh home; the published trending list against truth."""
    with tempfile.TemporaryDirectory() as home:
        environment = {**os.environ, "TASTEBUD_HOME": home}
        started = time.perf_counter()
        command = [sys.executable, "-m", "tastebud", "quickstart", "--no-serve"]
        subprocess.run([*command, "--end", end.isoformat()], env=environment, check=True,
                       capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - started
        from tastebud.config import load_settings
        from tastebud.jobs.outputs import read_published
        from tastebud.stores import open_stores

        os.environ["TASTEBUD_HOME"] = home
        with open_stores(load_settings()) as stores:
            published = read_published(stores.online, "trending") or {}
        world = load_world(Path(home) / "worlds" / "quickstart-0", WEIGHTS)
    as_of = datetime.fromisoformat(published["as_of"])
    flagged = {entry["item_id"] for entry in published.get("items", [])}
    active = active_trends(world.trends, as_of, TrendingSettings().recent_hours)
    return {
        "as_of": published["as_of"],
        "flagged": sorted(flagged),
        "active_injected": sorted(active),
        "true_flags": len(flagged & active),
        "false_flags": len(flagged - active),
        "quickstart_seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    end = datetime.fromisoformat(args.end).astimezone(UTC) if args.end else now_minute()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    for seed in seeds:
        result = sweep(seed, end, args.step_hours)
        results.append(result)
        print(
            f"seed {seed}: precision {result['precision']:.3f} recall {result['recall']:.3f} "
            f"({result['detected']}/{result['eligible']}), {result['detections']} detections "
            f"in {result['seconds']:.1f}s",
            flush=True,
        )
    document: dict[str, Any] = {
        "benchmark": "trending-quickstart",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "world_end": end.isoformat(),
        "step_hours": args.step_hours,
        "spec": {"users": 2000, "items": 3000, "days": 30, **TRENDS},
        "sweeps": results,
        "median_precision": statistics.median(r["precision"] for r in results),
        "median_recall": statistics.median(r["recall"] for r in results),
        "min_precision": min(r["precision"] for r in results),
        "min_recall": min(r["recall"] for r in results),
    }
    if args.quickstart:
        document["quickstart"] = end_to_end(end)
        print(f"quickstart: {document['quickstart']}")
    text = json.dumps(document, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
