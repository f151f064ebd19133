"""What a rate-limit check costs a request: the process's own bucket against the shared Redis
bucket (``tastebud.gateway.shared_ratelimit``), one call at a time (latency) and 50 at once
(calls/s of one event loop, as a worker's). Redis at ``--redis`` (loopback here).

    python benchmarks/bench_ratelimit.py --rounds 5 --out benchmarks/results/ratelimit.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

from tastebud.config import BudgetSettings
from tastebud.gateway.ratelimit import Limiter, RateLimiter
from tastebud.gateway.shared_ratelimit import FALLBACKS, RedisRateLimiter


async def sequential(limiter: Limiter, calls: int) -> float:
    """Median microseconds of one ``take``."""
    times = []
    for n in range(calls):
        started = time.perf_counter()
        await limiter.take(f"key{n % 100}", 1e9, 1e9)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def concurrent(limiter: Limiter, callers: int, calls: int) -> float:
    """Calls per second of ``callers`` coroutines each taking ``calls`` times."""

    async def caller(n: int) -> None:
        for _ in range(calls):
            await limiter.take(f"key{n}", 1e9, 1e9)

    started = time.perf_counter()
    await asyncio.gather(*(caller(n) for n in range(callers)))
    return callers * calls / (time.perf_counter() - started)


async def measure(redis_url: str, rounds: int) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    shared = RedisRateLimiter(redis_url, prefix, BudgetSettings(online_ms=1000.0))
    local = RateLimiter()
    runs: dict[str, list[float]] = {
        "local_us": [],
        "redis_us": [],
        "local_cps": [],
        "redis_cps": [],
    }
    before = FALLBACKS._value.get()
    try:
        await sequential(shared, 200)  # connections and the script loaded
        for _ in range(rounds):
            runs["local_us"].append(await sequential(local, 3000))
            runs["redis_us"].append(await sequential(shared, 3000))
            runs["local_cps"].append(await concurrent(local, 50, 60))
            runs["redis_cps"].append(await concurrent(shared, 50, 60))
    finally:
        await shared.aclose()
    medians = {name: round(statistics.median(values), 1) for name, values in runs.items()}
    return {
        "runs": {name: [round(v, 1) for v in values] for name, values in runs.items()},
        "medians": medians,
        "fallbacks": FALLBACKS._value.get() - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"machine": describe(), **asyncio.run(measure(args.redis, args.rounds))}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
