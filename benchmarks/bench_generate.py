"""Benchmark the synthetic world generator: wall time, events/s and peak RSS.

The generator streams day by day, so peak memory should stay flat as the event count grows;
this script is how we check that (the target is 20M events under 2 GB). It runs in-process,
so the peak RSS it reports is the whole interpreter's, imports included.

    .venv/bin/python benchmarks/bench_generate.py                      # ~20M events
    .venv/bin/python benchmarks/bench_generate.py --events-target 1e6
    .venv/bin/python benchmarks/bench_generate.py --users 5000 --items 8000 --days 14 --keep

Prints a human-readable summary, then one JSON line (for results files).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tastebud.data.synthetic import WorldSpec, estimate_events, generate_world


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events-target",
        type=float,
        default=20e6,
        help="approximate number of events; sets --users when that is not given (default 20M)",
    )
    parser.add_argument("--users", type=int, help="number of users (overrides --events-target)")
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        help="output directory (default: a fresh directory under /tmp, removed afterwards)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--quiet", action="store_true", help="no per-day progress on stderr")
    return parser.parse_args(argv)


def spec_for(args: argparse.Namespace) -> WorldSpec:
    """The spec to run: explicit --users, or enough users to reach --events-target."""
    spec = WorldSpec(users=1, items=args.items, days=args.days, seed=args.seed)
    if args.users is not None:
        return replace(spec, users=args.users)
    per_user = estimate_events(replace(spec, users=1000)) / 1000
    return replace(spec, users=max(1, math.ceil(args.events_target / per_user)))


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def directory_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    spec = spec_for(args)
    out = args.out or Path(tempfile.mkdtemp(prefix="tastebud-bench-", dir="/tmp"))
    keep = args.keep or args.out is not None

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\r  day {done}/{total}", end="" if done < total else "\n", file=sys.stderr)

    print(
        f"generating users={spec.users:,} items={spec.items:,} days={spec.days} "
        f"(~{estimate_events(spec):,} events expected) into {out}",
        file=sys.stderr,
    )
    started = time.perf_counter()
    summary = generate_world(spec, out, progress)
    seconds = time.perf_counter() - started
    result: dict[str, object] = {
        "benchmark": "generate_world",
        "users": spec.users,
        "items": spec.items,
        "days": spec.days,
        "seed": spec.seed,
        "events": summary.events,
        "wall_seconds": round(seconds, 2),
        "events_per_second": round(summary.events / seconds),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "output_mb": round(directory_mb(out), 1),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if not keep:
        shutil.rmtree(out)
    print(
        f"{summary.events:,} events in {seconds:.1f} s "
        f"({result['events_per_second']:,} events/s), peak RSS {result['peak_rss_mb']} MB, "
        f"output {result['output_mb']} MB"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
