"""HTTP event gateway: sustained ingestion and single-event latency, embedded store and
PostgreSQL, with ``tastebud serve --workers 2`` and a load generator in another process.

For each backend and run: a fresh store, a server started with the real command
(``python -m tastebud serve --workers 2``), then a load generator process that speaks
HTTP/1.1 over keep-alive loopback connections (asyncio, pre-encoded requests, so the
generator's own cost stays small on a 2-core machine):

* batches: ``--connections`` concurrent connections each POSTing batches of 100 new events
  for ``--seconds`` (after a warm-up); events/s and request latency percentiles;
* single: one connection POSTing one new event at a time; request latency percentiles.

Enrichment cost per event is measured in-process (``enrich`` with sessions in the embedded
online store, which is what the server uses by default).

Run:  .venv/bin/python benchmarks/bench_gateway.py [--runs 3] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe
from serve_process import ServeProcess, read_response, run_in_process, server_env

from tastebud.gateway.enrichment import (
    RequestContext,
    Sessionizer,
    enriched_table,
    enrichment_for,
)
from tastebud.schemas import Event, events_to_arrow
from tastebud.stores import open_database, open_online_store

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS = Path(__file__).resolve().parent / "results" / "gateway.json"
BATCH = 100
USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) Mobile/15E148"


# --- the load generator (runs in its own process) --------------------------------------------


def _request(port: int, key: str, body: bytes) -> bytes:
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nUser-Agent: {USER_AGENT}\r\n"
        f"Accept-Language: en-US,en;q=0.8\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _events(prefix: str, start: int, count: int) -> list[dict[str, Any]]:
    base = time.time() - 86_400
    return [
        {
            "event_id": f"{prefix}-{n}",
            "user_id": f"u{n % 5000}",
            "item_id": f"i{(n * 7919) % 20000}",
            "event_type": ("play", "like", "skip", "view", "click")[n % 5],
            "value": float(n % 300) if n % 2 else None,
            "timestamp": base + n * 0.01,
        }
        for n in range(start, start + count)
    ]


async def _connection(
    port: int,
    requests: list[bytes],
    until: float,
    warmup_until: float,
    latencies: list[float],
    counts: dict[str, int],
    per_request: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in requests:
            now = time.perf_counter()
            if now >= until:
                return
            writer.write(request)
            await writer.drain()
            status = await read_response(reader)
            done = time.perf_counter()
            if status != 202:
                counts["errors"] += 1
                continue
            if now >= warmup_until:
                latencies.append(done - now)
                counts["events"] += per_request
        counts["exhausted"] += 1
    finally:
        writer.close()


def generate_load(
    port: int, key: str, mode: str, connections: int, seconds: float, warmup: float, tag: str
) -> dict[str, Any]:
    """Runs in a separate process; returns throughput and latency percentiles."""
    per_request = BATCH if mode == "batches" else 1
    # Enough requests for a fast server; each connection gets its own unique events.
    budget = int((seconds + warmup) * (400 if mode == "batches" else 3000) / connections) + 10
    plans = []
    for c in range(connections):
        requests = []
        for r in range(budget):
            start = (c * budget + r) * per_request
            events = _events(f"{tag}-{mode}", start, per_request)
            body = {"events": events} if mode == "batches" else events[0]
            requests.append(_request(port, key, json.dumps(body).encode()))
        plans.append(requests)
    latencies: list[float] = []
    counts = {"events": 0, "errors": 0, "exhausted": 0}

    async def main() -> float:
        started = time.perf_counter()
        warmup_until = started + warmup
        until = warmup_until + seconds
        await asyncio.gather(
            *(
                _connection(port, plan, until, warmup_until, latencies, counts, per_request)
                for plan in plans
            )
        )
        return time.perf_counter() - warmup_until

    measured = asyncio.run(main())
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "mode": mode,
        "connections": connections,
        "seconds": round(measured, 2),
        "requests": len(latencies),
        "events": counts["events"],
        "events_per_second": round(counts["events"] / measured),
        "errors": counts["errors"],
        "ran_out_of_requests": counts["exhausted"],
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
    }


def run_generator(*args: Any) -> dict[str, Any]:
    return run_in_process(generate_load, *args)


# --- the server --------------------------------------------------------------------------------


def fresh_schema() -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return f"{POSTGRES}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


class Server(ServeProcess):
    """``tastebud serve`` on a fresh store, with an ingest key that has no rate limit."""

    def __init__(self, home: Path, database_url: str | None, workers: int) -> None:
        env = server_env(TASTEBUD_HOME=str(home))
        if database_url:
            env["TASTEBUD_DATABASE_URL"] = database_url
        super().__init__(env, workers, home.parent / "server.log")
        self.home = home
        self.database_url = database_url or f"embedded://{home / 'db'}"

    def __enter__(self) -> Server:
        self.home.mkdir(parents=True, exist_ok=True)
        with open_database(self.database_url) as database:
            created = database.gateway.keys.create(
                ["ingest"], "bench", rate_per_second=1e6, burst=1e6
            )
            assert created is not None
            self.key = created[1]
        super().__enter__()
        return self


def stored_count(database_url: str) -> int:
    with open_database(database_url) as database:
        return database.events.count()


# --- enrichment, in process ----------------------------------------------------------------


def enrichment_cost(url: str, requests: int = 2000) -> dict[str, float]:
    """Per-event enrichment time, as the gateway does it (session ids from the online store,
    device and locale from the headers, the columns replaced in the request's Arrow table),
    with sessions in the given online store: single-event requests (each a read of the
    user's session state, and a write when it moved) and batches of 100 (time per event)."""
    with open_online_store(url) as online:
        sessions = Sessionizer(online, 1800)
        context = RequestContext(USER_AGENT, "en-US,en;q=0.8", datetime.now(UTC))
        events = [
            Event.from_payload({k: v for k, v in e.items() if v is not None})
            for e in _events("enrich", 0, requests)
        ]
        singles = []
        for event in events:
            table = events_to_arrow([event])
            started = time.perf_counter()
            enriched_table(table, enrichment_for(table, context, sessions))
            singles.append(time.perf_counter() - started)
        batched = []
        for start in range(0, requests, BATCH):
            table = events_to_arrow(events[start : start + BATCH])
            started = time.perf_counter()
            enriched_table(table, enrichment_for(table, context, sessions))
            batched.append((time.perf_counter() - started) / table.num_rows)
    singles.sort()
    batched.sort()
    return {
        "single_p50_ms": round(statistics.median(singles) * 1000, 3),
        "single_p95_ms": round(singles[int(0.95 * len(singles))] * 1000, 3),
        "batch_per_event_p95_ms": round(batched[int(0.95 * len(batched))] * 1000, 4),
    }


# --- main ----------------------------------------------------------------------------------------


def one_run(backend: str, run: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as folder:
        schema = None
        database_url = None
        if backend == "postgres":
            database_url, schema = fresh_schema()
        try:
            with Server(Path(folder) / "home", database_url, args.workers) as server:
                tag = f"r{run}"
                batches = run_generator(
                    server.port,
                    server.key,
                    "batches",
                    args.connections,
                    args.seconds,
                    args.warmup,
                    tag,
                )
                single = run_generator(
                    server.port, server.key, "single", 1, args.single_seconds, 1.0, tag
                )
                metrics = server.metrics()
            stored = stored_count(server.database_url)
        finally:
            if schema:
                drop_schema(schema)
    enrich_line = [
        line
        for line in metrics.splitlines()
        if line.startswith("tastebud_feedback_enriched_count_total")
    ]
    return {
        "backend": backend,
        "run": run,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "batches": batches,
        "single": single,
        "stored_events": stored,
        "enriched_events": float(enrich_line[0].split()[-1]) if enrich_line else None,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(section: str, key: str) -> float:
        return statistics.median(r[section][key] for r in runs)

    return {
        "backend": runs[0]["backend"],
        "runs": len(runs),
        "median_batch_events_per_second": round(med("batches", "events_per_second")),
        "median_batch_p50_ms": med("batches", "p50_ms"),
        "median_batch_p95_ms": med("batches", "p95_ms"),
        "median_single_p50_ms": med("single", "p50_ms"),
        "median_single_p95_ms": med("single", "p95_ms"),
        "all_batch_events_per_second": [r["batches"]["events_per_second"] for r in runs],
        "all_batch_p95_ms": [r["batches"]["p95_ms"] for r in runs],
        "all_single_p95_ms": [r["single"]["p95_ms"] for r in runs],
        "load_average_1m": [r["load_average_1m_after"] for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--single-seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="embedded,postgres")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with psycopg.connect(POSTGRES) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    machine = {**describe(), "postgres": row[0] if row else None}
    print(json.dumps(machine))
    enrichment: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.runs):
            for name, url in (
                ("sqlite", f"sqlite://{Path(folder) / f'online-{i}.db'}"),
                ("redis", f"redis://127.0.0.1:6379/0?prefix=bench-{uuid.uuid4().hex[:8]}:"),
                ("memory", "memory://"),
            ):
                enrichment.setdefault(name, []).append(enrichment_cost(url))
    print("enrichment", json.dumps(enrichment))
    results: dict[str, list[dict[str, Any]]] = {}
    for run in range(args.runs):  # interleave backends so machine noise hits both alike
        for backend in args.backends.split(","):
            outcome = one_run(backend, run, args)
            print(json.dumps(outcome), flush=True)
            results.setdefault(backend, []).append(outcome)
    document = {
        "benchmark": "gateway",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {
            "workers": args.workers,
            "batch_events": BATCH,
            "connections": args.connections,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "single_seconds": args.single_seconds,
        },
        "enrichment": {
            name: {
                "median_single_p50_ms": statistics.median(e["single_p50_ms"] for e in runs),
                "median_single_p95_ms": statistics.median(e["single_p95_ms"] for e in runs),
                "median_batch_per_event_p95_ms": statistics.median(
                    e["batch_per_event_p95_ms"] for e in runs
                ),
                "runs": runs,
            }
            for name, runs in enrichment.items()
        },
        "summary": [summarize(runs) for runs in results.values()],
        "runs": [run for runs in results.values() for run in runs],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["summary"], indent=2))


if __name__ == "__main__":
    main()
