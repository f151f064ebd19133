"""Soak: worker memory under sustained mixed load from a concurrent client.

``tastebud serve --workers 2`` on the embedded stores (or ``--database-url``) with a small
served world (a catalog and an ALS model registered as ``production``), then an async load
generator in its own process sends ``--rate`` requests/s of mixed traffic for ``--minutes``:
events (batches of 1-10), recommendations, similar items, the popular list and catalog reads.
Requests go out in bursts (``--burst-seconds`` worth at once, as an async client that
gathers does), so up to a few hundred are in flight at each burst.

Every ``--sample-seconds`` each worker's memory is read from ``/proc/PID/status``: RSS split
into anonymous (``RssAnon``: the heap, what a leak grows) and file-backed (``RssFile``: the
SQLite memory map and Parquet segments the page cache shares), and its thread count. After
the load, sampling goes on for ``--idle-seconds`` to see what is given back.

Target: after the first ``--settle-minutes`` (5), each worker's RSS grows less than 5% to the
end of the load. Writes ``results/soak.json``; exits 1 when the target is missed.

Run:  flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_soak.py [--minutes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe
from serve_process import ServeProcess, read_response, run_in_process, server_env

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
TARGET_GROWTH = 0.05
N_USERS, N_ITEMS = 20_000, 5_000
EVENT_TYPES = ("play", "like", "skip", "view", "click")


# --- setup -----------------------------------------------------------------------------------


def prepare(home: Path, database_url: str | None) -> str:
    """A catalog and a small ALS model as ``production``; returns an unlimited read+ingest key."""
    import pyarrow as pa
    import scipy.sparse as sp

    from tastebud.config import load_settings
    from tastebud.data.matrix import InteractionMatrix, MatrixOptions
    from tastebud.data.vocabulary import Vocabulary
    from tastebud.models import ALSRecommender
    from tastebud.registry import open_registry
    from tastebud.schemas import Item
    from tastebud.stores import open_stores

    rng = np.random.default_rng(0)
    now = datetime.now(UTC).replace(microsecond=0)
    settings = load_settings(home=home, database_url=database_url)
    with open_stores(settings) as stores:
        stores.catalog.upsert_items(
            [
                Item(
                    item_id=f"i{n}",
                    title=f"Track {n}",
                    creator=f"artist{n % 500}",
                    categories=[f"genre{n % 20}"],
                    created_at=now - timedelta(days=float(rng.uniform(0, 400))),
                )
                for n in range(N_ITEMS)
            ]
        )
        rows = rng.integers(0, N_USERS, 400_000)
        cols = np.minimum(rng.zipf(1.3, 400_000) - 1, N_ITEMS - 1)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS)
        )
        matrix.sum_duplicates()
        trained_until = now - timedelta(days=1)
        data = InteractionMatrix(
            matrix=matrix,
            users=Vocabulary.from_ids(pa.array([f"u{n}" for n in range(N_USERS)])),
            items=Vocabulary.from_ids(pa.array([f"i{n}" for n in range(N_ITEMS)])),
            negatives=sp.csr_matrix((N_USERS, N_ITEMS), dtype=np.float32),
            item_days=sp.csr_matrix((N_ITEMS, 0), dtype=np.float64),
            day0=trained_until.timestamp(),
            reference_time=trained_until.timestamp(),
            snapshot="bench-soak",
            options=MatrixOptions(),
            stats={"rows": int(matrix.nnz)},
        )
        model = ALSRecommender(factors=32, iterations=8, use_gpu=False, random_state=0).fit(data)
        with tempfile.TemporaryDirectory() as scratch:
            folder = model.save(Path(scratch) / "model")
            manifest = {
                "model": model.name,
                "user_count": N_USERS,
                "item_count": N_ITEMS,
                "embedding_dim": 32,
                "params": {},
                "time_range": {"start": trained_until - timedelta(days=400), "end": trained_until},
            }
            open_registry(settings, stores.artifacts).register(
                folder, manifest, aliases=["production"]
            )
        created = stores.database.gateway.keys.create(
            ["read", "ingest"], "soak", rate_per_second=1e6, burst=1e6
        )
        assert created is not None
        return created[1]


# --- the load generator (its own process) ----------------------------------------------------


def _request(rng: random.Random, prefix: str, n: int) -> tuple[str, str, str, Any]:
    """One request of the mix: (kind, method, path, json body or None)."""
    draw = rng.random()
    user = f"u{min(int(rng.paretovariate(1.2)) - 1, N_USERS - 1)}"
    if rng.random() < 0.1:
        user = f"new-{rng.randrange(50_000)}"
    item = f"i{min(int(rng.paretovariate(1.1)) - 1, N_ITEMS - 1)}"
    if draw < 0.45:
        events = [
            {
                "event_id": f"{prefix}-{n}-{e}",
                "user_id": user,
                "item_id": f"i{rng.randrange(N_ITEMS)}",
                "event_type": rng.choice(EVENT_TYPES),
                "timestamp": time.time() - rng.uniform(0, 60),
                "context": {"screen": rng.choice(("home", "search", "album"))},
            }
            for e in range(rng.randint(1, 10))
        ]
        return "events", "POST", "/v1/events", {"events": events}
    if draw < 0.80:
        return "recommendations", "GET", f"/v1/users/{user}/recommendations?k=20", None
    if draw < 0.87:
        return "similar", "GET", f"/v1/items/{item}/similar?k=10", None
    if draw < 0.93:
        return "popular", "GET", "/v1/popular?k=20", None
    return "item", "GET", f"/v1/items/{item}", None


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections to one server, opened as needed up to ``size``: a
    plain asyncio client (httpx's pool, with a few hundred connections, cost more CPU than
    the server it was to load, and queued requests in the client)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.gate = asyncio.Semaphore(size)

    async def send(self, request: bytes) -> int:
        async with self.gate:
            reused = bool(self.idle)
            if reused:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(request)
                await writer.drain()
                status = await read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                writer.close()
                partial = isinstance(error, asyncio.IncompleteReadError) and error.partial
                if not reused or partial:
                    raise
                # The server closed this kept-alive connection (idle past its keep-alive
                # timeout) before the request reached it: send it again on a new one.
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                try:
                    writer.write(request)
                    await writer.drain()
                    status = await read_response(reader)
                except BaseException:
                    writer.close()
                    raise
            except BaseException:
                writer.close()
                raise
            self.idle.append((reader, writer))
            return status


def encode(port: int, key: str, method: str, path: str, body: Any) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        "User-Agent: bench-soak/1.0 (Android 14)\r\nAccept-Language: en-US,en;q=0.8\r\n"
    )
    if body is None:
        return (head + "\r\n").encode()
    data = json.dumps(body).encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


def generate(
    port: int, key: str, rate: float, seconds: float, burst_seconds: float, in_flight: int
) -> dict[str, Any]:
    """Open loop: every ``burst_seconds`` the next ``rate * burst_seconds`` requests start at
    once (at most ``in_flight`` outstanding, one connection each); per-minute statuses and
    latencies by route."""
    rng = random.Random(1)
    prefix = uuid.uuid4().hex[:8]
    minutes: dict[int, dict[str, Any]] = {}
    peak = 0
    outstanding = 0

    async def one(pool: ConnectionPool, n: int, t0: float) -> None:
        nonlocal peak, outstanding
        kind, method, path, body = _request(rng, prefix, n)
        outstanding += 1
        peak = max(peak, outstanding)
        started = time.perf_counter()
        try:
            status = str(await pool.send(encode(port, key, method, path, body)))
        except (OSError, asyncio.IncompleteReadError) as error:
            status = type(error).__name__
        finally:
            outstanding -= 1
        minute = minutes.setdefault(int((started - t0) // 60), {"statuses": {}, "ms": {}})
        minute["statuses"][status] = minute["statuses"].get(status, 0) + 1
        minute["ms"].setdefault(kind, []).append((time.perf_counter() - started) * 1000)

    async def main() -> None:
        pool = ConnectionPool(port, in_flight)
        t0 = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        per_burst = max(1, round(rate * burst_seconds))
        n = 0
        burst = 0
        while time.perf_counter() - t0 < seconds:
            for _ in range(per_burst):
                task = asyncio.create_task(one(pool, n, t0))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            burst += 1
            delay = t0 + burst * burst_seconds - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*tasks)
        for _, writer in pool.idle:
            writer.close()

    asyncio.run(main())
    summary = {}
    for minute, found in sorted(minutes.items()):
        summary[str(minute)] = {"statuses": found["statuses"]}
        for kind, values in sorted(found["ms"].items()):
            ordered = sorted(values)
            summary[str(minute)][kind] = {
                "requests": len(ordered),
                "p50_ms": round(ordered[len(ordered) // 2], 2),
                "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            }
    return {"minutes": summary, "peak_in_flight": peak}


# --- memory sampling -------------------------------------------------------------------------

STATUS_FIELDS = {
    "VmRSS": "rss_mb",
    "RssAnon": "anon_mb",
    "RssFile": "file_mb",
    "RssShmem": "shmem_mb",
}


def memory_of(pid: int) -> dict[str, float]:
    """A process's RSS, anonymous and file-backed apart (MB), and its thread count."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in STATUS_FIELDS:
            found[STATUS_FIELDS[name]] = round(int(value.split()[0]) / 1024, 1)
        elif name == "Threads":
            found["threads"] = int(value)
    return found


class Sampler(threading.Thread):
    def __init__(self, parent: int, every: float) -> None:
        super().__init__(daemon=True)
        self.parent = parent
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self.phase = "load"
        self.started = time.monotonic()
        self.done = threading.Event()

    def workers(self) -> list[int]:
        """The server's worker processes (not multiprocessing's resource tracker)."""
        children = psutil.Process(self.parent).children()
        return sorted(c.pid for c in children if "resource_tracker" not in " ".join(c.cmdline()))

    def run(self) -> None:
        while not self.done.is_set():
            row: dict[str, Any] = {"t": round(time.monotonic() - self.started, 1)}
            row["phase"] = self.phase
            for number, pid in enumerate(self.workers()):
                try:
                    row[f"w{number}"] = {"pid": pid, **memory_of(pid)}
                except (FileNotFoundError, ProcessLookupError):
                    continue
            self.samples.append(row)
            print(json.dumps(row), flush=True)
            self.done.wait(self.every)


def growth(samples: list[dict[str, Any]], settle_s: float) -> dict[str, Any]:
    """Per worker: memory at the end of the settle period, at the end of the load, and the
    relative growth between them (RSS and its anonymous part)."""
    load = [s for s in samples if s["phase"] == "load"]
    after = [s for s in load if s["t"] >= settle_s]
    out: dict[str, Any] = {}
    if not after:
        return out
    first, last = after[0], load[-1]
    for worker in sorted(k for k in first if k.startswith("w")):
        if worker not in last or first[worker]["pid"] != last[worker]["pid"]:
            out[worker] = {"restarted": True}
            continue
        start, end = first[worker], last[worker]
        out[worker] = {
            "rss_mb": [start["rss_mb"], end["rss_mb"]],
            "anon_mb": [start["anon_mb"], end["anon_mb"]],
            "file_mb": [start["file_mb"], end["file_mb"]],
            "rss_growth": round(end["rss_mb"] / start["rss_mb"] - 1, 4),
            "anon_growth": round(end["anon_mb"] / start["anon_mb"] - 1, 4),
            "threads": [start["threads"], end["threads"]],
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--settle-minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst-seconds", type=float, default=2.0)
    parser.add_argument("--in-flight", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-seconds", type=float, default=15.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default=None, help="Default: the embedded store.")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE",
        help="Extra server environment, e.g. MALLOC_ARENA_MAX=2 (to compare).",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    machine = describe()
    print(json.dumps(machine), flush=True)
    extra = dict(item.split("=", 1) for item in args.server_env)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as scratch:
        home = Path(scratch) / "home"
        started = time.perf_counter()
        key = prepare(home, args.database_url)
        print(f"setup: {time.perf_counter() - started:.1f} s", flush=True)
        variables = {"TASTEBUD_HOME": str(home), **extra}
        if args.database_url:
            variables["TASTEBUD_DATABASE_URL"] = args.database_url
        with ServeProcess(
            server_env(**variables), args.workers, Path(scratch) / "server.log"
        ) as server:
            sampler = Sampler(server.process.pid, args.sample_seconds)
            sampler.start()
            load = run_in_process(
                generate,
                server.port,
                key,
                args.rate,
                args.minutes * 60,
                args.burst_seconds,
                args.in_flight,
            )
            sampler.phase = "idle"
            time.sleep(args.idle_seconds)
            sampler.done.set()
            sampler.join()
            log_tail = (Path(scratch) / "server.log").read_text()[-3000:]
    grown = growth(sampler.samples, args.settle_minutes * 60)
    met = bool(grown) and all(
        not worker.get("restarted") and worker["rss_growth"] < TARGET_GROWTH
        for worker in grown.values()
    )
    result = {
        "machine": machine,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "growth_after_settle": grown,
        "target": f"RSS growth after {args.settle_minutes:g} min < {TARGET_GROWTH:.0%}",
        "met": met,
        "load": load,
        "samples": sampler.samples,
        "server_log_tail": log_tail,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({"growth_after_settle": grown, "met": met}, indent=1))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
