"""Feature-store read latency on Redis: in process and through ``POST /v1/features``.

Workloads (Zipf-distributed keys, ``--zipf`` exponent over ``--users`` users and ``--items``
items, so hot entities repeat as they do in production):

* ranking: 1 user + 20 items, 10 features each (two views), the issue's workload;
* feast: 1 entity x 50 features, the shape Feast's Python feature server was published at
  (p50 8.8 ms / p99 15.3 ms on Redis).

Scenarios, each on a fresh service (in process) or one server (HTTP, ``tastebud serve
--workers 2`` in its own process on loopback, a load generator in another process):

* ``c{N}``: ``--concurrency`` callers (threads in process, keep-alive connections over HTTP)
  as fast as they can. A closed loop measures throughput: its latency is ``N / throughput``
  (Little's law) whatever one call costs, so it is reported, not budgeted.
* ``c{N}.r{R}``: the same callers offered ``--rate`` requests/s in total on a fixed
  schedule, each latency counted from its scheduled start (queueing included, no
  coordinated omission). The budgets are checked here.
* ``c1``: one caller, nothing queued in front of it; in process also with the LRU off
  (every call one MGET per view to Redis).

Each scenario starts after ``--warmup`` unmeasured requests (a server runs warm); its cache
hit ratio is that of the in-process LRU in front of Redis over the measured requests (over
HTTP, from the server's /metrics).

Writes a JSON summary and exits 1 when a budget is exceeded: in-process p95 <= 2 ms,
HTTP p95 <= 5 ms, cache hit ratio >= 0.8 (the ranking workload, scheduled scenario).

Run:  .venv/bin/python benchmarks/feature_store_latency.py --requests 5000 --concurrency 25
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe
from serve_process import ServeProcess, read_response, run_in_process, server_env

from tastebud.features.online import FeatureOnlineStore
from tastebud.features.serving import FeatureService
from tastebud.features.store import open_offline_store
from tastebud.features.views import FeatureRegistry
from tastebud.stores import open_database, open_online_store

RESULTS = Path(__file__).resolve().parent / "results" / "feature-store.json"
BUDGETS = {"inprocess_p95_ms": 2.0, "http_p95_ms": 5.0, "cache_hit_ratio": 0.8}


def manifest(name: str, entity: str, features: int) -> dict[str, Any]:
    return {
        "name": name,
        "version": "1.0.0",
        "entity": entity,
        "description": "benchmark view",
        "owner": "bench",
        "ttl_seconds": 86400,
        "source": {"kind": "python", "transform": "bench:none"},
        "features": [
            {"name": f"f{n}", "dtype": "float64", "description": "x"} for n in range(features)
        ],
    }


WORKLOADS = {
    "ranking": {"refs": ["bench_user:*", "bench_item:*"], "items": 20},
    "feast": {"refs": ["bench_wide:*"], "items": 0},
}


def setup(folder: Path, redis_url: str, users: int, items: int) -> FeatureRegistry:
    """Manifests, then every entity's values in Redis (and the offline store)."""
    manifests = folder / "manifests"
    manifests.mkdir()
    views = [
        manifest("bench_user", "user", 10),
        manifest("bench_item", "item", 10),
        manifest("bench_wide", "user", 50),
    ]
    (manifests / "bench.yaml").write_text(json.dumps({"views": views}))
    registry = FeatureRegistry.load([manifests], builtin=False)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    kv = open_online_store(redis_url)
    online = FeatureOnlineStore(kv)
    offline = open_offline_store(f"parquet://{folder / 'offline'}")
    for view, count, prefix in (
        (registry.view("bench_user"), users, "u"),
        (registry.view("bench_item"), items, "i"),
        (registry.view("bench_wide"), users, "u"),
    ):
        columns: dict[str, Any] = {
            "entity_id": [f"{prefix}{n}" for n in range(count)],
            "event_timestamp": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
        }
        for name in view.feature_names:
            columns[name] = rng.random(count).round(6)
        table = pa.table(columns, schema=view.arrow_schema())
        offline.write(view, table, now)
        online.write(view, table)
        online.invalidate(view)
    offline.close()
    kv.close()
    return registry


def zipf_ids(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    """Ids 0..n-1 with P(k) ~ 1 / (k + 1)^exponent, shuffled so hot ids are spread."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    permutation = rng.permutation(n)
    return permutation[rng.choice(n, size=size, p=weights / weights.sum())]


def requests_for(
    workload: str, count: int, users: int, items: int, exponent: float, seed: int
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    spec = WORKLOADS[workload]
    user_ids = zipf_ids(rng, users, count, exponent)
    bodies = []
    for n in range(count):
        entities: dict[str, list[str]] = {"user": [f"u{user_ids[n]}"]}
        if spec["items"]:
            chosen: list[str] = []
            while len(chosen) < spec["items"]:
                for item in zipf_ids(rng, items, spec["items"], exponent):
                    name = f"i{item}"
                    if name not in chosen and len(chosen) < spec["items"]:
                        chosen.append(name)
            entities["item"] = chosen
        bodies.append({"entities": entities, "features": spec["refs"]})
    return bodies


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


def in_process(
    registry: FeatureRegistry,
    redis_url: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    warmup: list[dict[str, Any]],
    cache: bool = True,
    rate: float | None = None,
) -> dict[str, Any]:
    """A fresh service (cold LRU), warmed with ``warmup`` requests that are not measured;
    ``cache=False`` turns the LRU off, so every call is one MGET per view to Redis.

    Without ``rate`` the callers loop as fast as they can (closed loop: the latency is then
    ``concurrency / throughput``, Little's law, whatever one call costs). With ``rate`` the
    calls are offered on a fixed schedule (``rate`` per second across the callers) and each
    latency counts from its scheduled start, so time spent queued behind a late caller is
    included (no coordinated omission)."""
    kv = open_online_store(redis_url)
    online = FeatureOnlineStore(kv, cache_entries=100_000 if cache else 0)
    service = FeatureService(registry, online)
    for body in warmup:
        service.get_online_features(body["entities"], body["features"])
    online.hits = online.misses = 0
    latencies: list[float] = []
    missing = 0
    lock = threading.Lock()

    def call(body: dict[str, Any], scheduled: float | None = None) -> None:
        nonlocal missing
        if scheduled is not None:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        started = time.perf_counter() if scheduled is None else scheduled
        result = service.get_online_features(body["entities"], body["features"])
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            missing += len(result.missing)

    def caller(share: list[dict[str, Any]], offset: int) -> None:
        for n, body in enumerate(share):
            scheduled = None
            if rate:
                scheduled = began + (n * concurrency + offset) / rate
            call(body, scheduled)

    began = time.perf_counter() + 0.05
    if concurrency == 1:
        caller(bodies, 0)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(
                pool.map(
                    caller, [bodies[c::concurrency] for c in range(concurrency)], range(concurrency)
                )
            )
    wall = time.perf_counter() - began
    kv.close()
    return {
        **percentiles(latencies),
        "requests": len(latencies),
        "per_second": round(len(latencies) / wall),
        "cache_hit_ratio": round(online.hit_ratio or 0.0, 4),
        "missing_values": missing,
    }


# --- HTTP: a server process and a load generator process ---------------------------------


def _request(port: int, key: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/features HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def generate_load(
    port: int,
    key: str,
    bodies: list[dict[str, Any]],
    connections: int,
    rate: float | None = None,
) -> dict:
    """Runs in its own process: ``connections`` keep-alive connections share the requests,
    as fast as they can or, with ``rate``, on a fixed schedule (latency from the scheduled
    send time, as in ``in_process``)."""
    encoded = [_request(port, key, body) for body in bodies]
    latencies: list[float] = []
    errors = 0

    async def connection(share: list[bytes], offset: int, began: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for n, request in enumerate(share):
                started = time.perf_counter()
                if rate:
                    scheduled = began + (n * connections + offset) / rate
                    if scheduled > started:
                        await asyncio.sleep(scheduled - started)
                    started = scheduled
                writer.write(request)
                await writer.drain()
                status = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            writer.close()

    async def main() -> float:
        began = time.perf_counter() + 0.2  # the connections are open by then
        await asyncio.gather(
            *(connection(encoded[c::connections], c, began) for c in range(connections))
        )
        return time.perf_counter() - began

    wall = asyncio.run(main())
    return {
        **percentiles(latencies),
        "requests": len(latencies),
        "per_second": round(len(latencies) / wall),
        "errors": errors,
    }


def run_generator(*args: Any) -> dict[str, Any]:
    return run_in_process(generate_load, *args)


class Server(ServeProcess):
    """``tastebud serve`` over the benchmark's manifests, offline store and Redis, with a read
    key that has no rate limit."""

    def __init__(self, folder: Path, redis_url: str, workers: int) -> None:
        home = folder / "home"
        home.mkdir()
        env = server_env(
            TASTEBUD_HOME=str(home),
            TASTEBUD_ONLINE_URL=redis_url,
            TASTEBUD_FEATURES__MANIFESTS=json.dumps([str(folder / "manifests")]),
            TASTEBUD_FEATURES__BUILTIN_MANIFESTS="false",
            TASTEBUD_FEATURES__OFFLINE_URL=f"parquet://{folder / 'offline'}",
        )
        super().__init__(env, workers, folder / "server.log")
        with open_database(f"embedded://{home / 'db'}") as database:
            created = database.gateway.keys.create(
                ["read"], "bench", rate_per_second=1e6, burst=1e6
            )
            assert created is not None
            self.key = created[1]

    def cache_counts(self) -> tuple[float, float]:
        """The server's LRU hits and misses so far, from /metrics."""
        counts = {"hits": 0.0, "misses": 0.0}
        for line in self.metrics().splitlines():
            for kind in counts:
                if line.startswith(f"tastebud_feature_cache_{kind}_count_total "):
                    counts[kind] = float(line.split()[1])
        return counts["hits"], counts["misses"]


def one_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    prefix = f"tbbench:{uuid.uuid4().hex[:10]}:"
    separator = "&" if "?" in args.redis else "?"
    redis_url = f"{args.redis}{separator}prefix={prefix}"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-features-") as name:
        folder = Path(name)
        registry = setup(folder, redis_url, args.users, args.items)
        try:
            for workload in WORKLOADS:
                bodies = requests_for(
                    workload, args.requests, args.users, args.items, args.zipf, seed=run
                )
                warmup = requests_for(
                    workload, args.warmup, args.users, args.items, args.zipf, seed=1000 + run
                )
                results[f"{workload}.inprocess.c{args.concurrency}"] = in_process(
                    registry, redis_url, bodies, args.concurrency, warmup
                )
                results[f"{workload}.inprocess.c{args.concurrency}.r{args.rate:g}"] = in_process(
                    registry, redis_url, bodies, args.concurrency, warmup, rate=args.rate
                )
                results[f"{workload}.inprocess.c1"] = in_process(
                    registry, redis_url, bodies, 1, warmup
                )
                results[f"{workload}.inprocess.nocache.c1"] = in_process(
                    registry, redis_url, bodies, 1, warmup[:100], cache=False
                )
            if not args.skip_http:
                with Server(folder, redis_url, args.workers) as server:
                    for workload in WORKLOADS:
                        bodies = requests_for(
                            workload, args.requests, args.users, args.items, args.zipf, seed=run
                        )
                        warmup = requests_for(
                            workload,
                            args.warmup,
                            args.users,
                            args.items,
                            args.zipf,
                            seed=1000 + run,
                        )
                        run_generator(server.port, server.key, warmup, 2)
                        scenarios = [
                            (f"c{args.concurrency}", args.concurrency, None),
                            (f"c{args.concurrency}.r{args.rate:g}", args.concurrency, args.rate),
                            ("c1", 1, None),
                        ]
                        for label, concurrency, rate in scenarios:
                            before = server.cache_counts()
                            found = run_generator(
                                server.port, server.key, bodies, concurrency, rate
                            )
                            after = server.cache_counts()
                            hits, misses = (a - b for a, b in zip(after, before, strict=True))
                            found["cache_hit_ratio"] = round(hits / max(1, hits + misses), 4)
                            results[f"{workload}.http.{label}"] = found
        finally:
            client = redis.Redis.from_url(args.redis)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=25)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1000, help="Unmeasured requests first.")
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--rate",
        type=float,
        default=500.0,
        help="Requests/s offered in the scheduled scenarios (the budgets are checked there);"
        " 2.5x the serving target of 200 recommendation requests/s, one lookup each.",
    )
    parser.add_argument("--workers", type=int, default=2, help="Server worker processes.")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = [one_run(args, run) for run in range(args.runs)]
    medians = {
        scenario: {
            metric: statistics.median(run[scenario][metric] for run in runs)
            for metric in runs[0][scenario]
        }
        for scenario in runs[0]
    }
    rated = f"c{args.concurrency}.r{args.rate:g}"
    ranking_inprocess = medians[f"ranking.inprocess.{rated}"]
    checks = {
        "inprocess_p95_ms": ranking_inprocess["p95_ms"],
        "cache_hit_ratio": ranking_inprocess["cache_hit_ratio"],
    }
    if not args.skip_http:
        checks["http_p95_ms"] = medians[f"ranking.http.{rated}"]["p95_ms"]
    failed = [
        name
        for name, value in checks.items()
        if (value < BUDGETS[name] if name == "cache_hit_ratio" else value > BUDGETS[name])
    ]
    summary = {
        "benchmark": "feature_store_latency",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "config": {k: str(v) for k, v in vars(args).items()},
        "budgets": BUDGETS,
        "checks": checks,
        "exceeded": failed,
        "medians": medians,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({"checks": checks, "exceeded": failed, "medians": medians}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
