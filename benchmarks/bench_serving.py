"""Recommendation serving: latency at a fixed rate, capacity against /healthz, and the time
from an accepted event to a changed list, with ``tastebud serve --workers 2``.

Setup (cached under ``--home``, reused when present): a catalog of 50,000 items (5,000
creators, 20 categories, created over two years, some in the last 14 days) and an implicit
ALS model, 100,000 users x 50,000 items x 64 factors, fitted on a synthetic Zipf-skewed
matrix (~4M interactions) and registered as ``production``. No popularity job runs: serving
falls back to the model's popularity (what it does when nothing is published).

Then the ``recommendations`` job (``tastebud jobs run recommendations``) stores every known
user's default list (its run time is recorded). Each ``--modes`` entry starts its own server:
``precomputed`` (the default configuration: stored lists are served while they hold) and
``on-demand`` (``serving.precomputed = false``: every request ranked), one after the other in
this run. Targets are checked on the first mode. Against each server (embedded stores, SQLite
online store), from load generators in their own process over keep-alive loopback
connections:

* open loop: ``--rate`` GET /v1/users/{id}/recommendations?k=20&explain=true per second for
  ``--seconds`` (users Zipf over the 100k, ~5% unknown ids), latency from each request's
  scheduled start (queueing included); target p95 <= 10 ms;
* closed loop: ``--connections`` connections as fast as they can for ``--capacity-seconds``
  against /healthz, then the recommendation endpoint; target ratio >= 0.4;
* real-time (once, after the first mode's runs): ``--trials`` times GET a known user's list, POST a
  ``play`` of its top item, poll (new connection per poll, so both workers answer) until the
  list changed and the item is gone; target: every trial within 1 s.

The ``tastebud_reco_hybrid_latency_ms`` histogram is scraped around each phase, for the mean
time per ranking stage, and ``tastebud_reco_precomputed_requests_total`` for how requests were
answered (hit, missing: unknown users, stale_activity: the real-time trials...). Writes
``results/serving.json``; exits 1 when a target is missed.

Run:  .venv/bin/python benchmarks/bench_serving.py --runs 3 [--home /tmp/bench-serving]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe
from serve_process import ServeProcess, read_response, run_in_process, server_env

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
TARGETS = {"p95_ms": 10.0, "capacity_ratio": 0.4, "realtime_max_s": 1.0}
N_USERS, N_ITEMS, FACTORS = 100_000, 50_000, 64
N_CREATORS, N_CATEGORIES = 5_000, 20
SETUP_FILE = "bench-serving.json"
ZIPF = 1.05  # item popularity and user activity skew


# --- setup -----------------------------------------------------------------------------------


def catalog(now: datetime, rng: np.random.Generator) -> list[Any]:
    """50,000 items over two years; ~2% created in the last 14 days (the "new" source)."""
    from tastebud.schemas import Item

    ages = rng.uniform(0, 730, N_ITEMS)
    recent = rng.random(N_ITEMS) < 0.02
    ages[recent] = rng.uniform(0, 14, int(recent.sum()))
    return [
        Item(
            item_id=f"i{n}",
            title=f"Track {n}",
            creator=f"artist{int(rng.integers(N_CREATORS))}",
            categories=[f"genre{n % N_CATEGORIES}"],
            created_at=now - timedelta(days=float(ages[n])),
        )
        for n in range(N_ITEMS)
    ]


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def interactions(rng: np.random.Generator, target: int) -> sp.csr_matrix:
    """Users x items play counts: user activity and item popularity Zipf-skewed; 60% of a
    user's plays in their favourite category (so the factors have some structure)."""
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=N_USERS)
    per_user = np.maximum(3, np.round(activity / activity.sum() * target)).astype(np.int64)
    rows = np.repeat(np.arange(N_USERS), per_user)
    total = len(rows)
    popularity = rng.permutation(N_ITEMS)  # rank -> item
    ranks = rng.choice(N_ITEMS, size=total, p=zipf_weights(N_ITEMS, ZIPF))
    cols = popularity[ranks]
    favourite = rng.integers(N_CATEGORIES, size=N_USERS)[rows]
    in_category = rng.random(total) < 0.6
    per_category = N_ITEMS // N_CATEGORIES
    local = rng.choice(per_category, size=int(in_category.sum()), p=zipf_weights(per_category, 1.0))
    cols[in_category] = local * N_CATEGORIES + favourite[in_category]
    matrix = sp.csr_matrix(
        (np.ones(total, np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS), dtype=np.float32
    )
    matrix.sum_duplicates()
    return matrix


def prepare(home: Path, interactions_target: int, iterations: int) -> dict[str, Any]:
    """The catalog and a registered production model in ``home`` (reused when present)."""
    marker = home / SETUP_FILE
    if marker.exists():
        found = json.loads(marker.read_text())
        print(f"setup: reusing {home} ({found['model_version']})", flush=True)
        return found
    from tastebud.config import load_settings
    from tastebud.data.matrix import InteractionMatrix, MatrixOptions
    from tastebud.data.vocabulary import Vocabulary
    from tastebud.models import ALSRecommender
    from tastebud.registry import open_registry
    from tastebud.stores import open_stores

    home.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC).replace(microsecond=0)
    trained_until = now - timedelta(days=1)  # events sent by the benchmark are newer
    settings = load_settings(home=home)
    started = time.perf_counter()
    stores = open_stores(settings)
    try:
        items = catalog(now, rng)
        for start in range(0, len(items), 5_000):
            stores.catalog.upsert_items(items[start : start + 5_000])
        catalog_s = time.perf_counter() - started
        started = time.perf_counter()
        matrix = interactions(rng, interactions_target)
        empty = sp.csr_matrix((N_USERS, N_ITEMS), dtype=np.float32)
        data = InteractionMatrix(
            matrix=matrix,
            users=Vocabulary.from_ids(pa.array([f"u{n}" for n in range(N_USERS)])),
            items=Vocabulary.from_ids(pa.array([f"i{n}" for n in range(N_ITEMS)])),
            negatives=empty,
            item_days=sp.csr_matrix((N_ITEMS, 0), dtype=np.float64),
            day0=trained_until.timestamp(),
            reference_time=trained_until.timestamp(),
            snapshot="bench-serving",
            options=MatrixOptions(),
            stats={"rows": int(matrix.nnz)},
        )
        matrix_s = time.perf_counter() - started
        started = time.perf_counter()
        model = ALSRecommender(
            factors=FACTORS, iterations=iterations, use_gpu=False, random_state=0
        ).fit(data)
        fit_s = time.perf_counter() - started
        registry = open_registry(settings, stores.artifacts)
        with tempfile.TemporaryDirectory() as scratch:
            folder = model.save(Path(scratch) / "model")
            manifest = {
                "model": model.name,
                "user_count": len(model.users_),
                "item_count": len(model.items_),
                "embedding_dim": int(model.item_factors_.shape[1]),
                "params": {"iterations": iterations, "factors": FACTORS},
                "time_range": {"start": trained_until - timedelta(days=730), "end": trained_until},
            }
            version = registry.register(folder, manifest, aliases=["production"]).model_version
    finally:
        stores.close()
    found = {
        "model_version": version,
        "created": now.isoformat(),
        "users": N_USERS,
        "items": N_ITEMS,
        "factors": FACTORS,
        "interactions": int(matrix.nnz),
        "iterations": iterations,
        "new_items_14d": int(
            sum(1 for i in items if i.created_at and i.created_at > now - timedelta(days=14))
        ),
        "catalog_seconds": round(catalog_s, 1),
        "matrix_seconds": round(matrix_s, 1),
        "fit_seconds": round(fit_s, 1),
        "popular_list": "model popularity (no popularity job published)",
    }
    marker.write_text(json.dumps(found, indent=1))
    print("setup:", json.dumps(found), flush=True)
    return found


def precompute(home: Path, candidates_cf: int) -> dict[str, Any]:
    """Run the ``recommendations`` job (``tastebud jobs run``) with the server's settings, so
    every known user's default list is stored; returns the job's summary."""
    env = server_env(TASTEBUD_HOME=str(home), TASTEBUD_RANKING__CANDIDATES__CF=str(candidates_cf))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tastebud", "jobs", "run", "recommendations", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"recommendations job failed: {done.stderr[-2000:]}")
    outcome = json.loads(done.stdout[done.stdout.index("{") :])
    summary = outcome.get("output", outcome)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    print("precomputed:", json.dumps(summary), flush=True)
    return summary


# --- the server ------------------------------------------------------------------------------


class Server(ServeProcess):
    """``tastebud serve`` over the benchmark home, with a read+ingest key (no rate limit)."""

    def __init__(
        self, home: Path, workers: int, candidates_cf: int, extra: dict[str, str] | None = None
    ) -> None:
        env = server_env(
            TASTEBUD_HOME=str(home),
            TASTEBUD_RANKING__CANDIDATES__CF=str(candidates_cf),
            **(extra or {}),
        )
        super().__init__(env, workers, home / "server.log")
        from tastebud.stores import open_database

        with open_database(f"embedded://{home / 'db'}") as database:
            created = database.gateway.keys.create(
                ["read", "ingest"], "bench-serving", rate_per_second=1e6, burst=1e6
            )
            assert created is not None
            self.key = created[1]

    def stage_totals(self) -> dict[str, tuple[float, float]]:
        """(sum ms, count) per stage of the ranking latency histogram, from /metrics."""
        totals: dict[str, list[float]] = {}
        for line in self.metrics().splitlines():
            if not line.startswith("tastebud_reco_hybrid_latency_ms_"):
                continue
            name, _, value = line.rpartition(" ")
            kind = name.split("{")[0].rsplit("_", 1)[-1]
            if kind not in ("sum", "count") or 'stage="' not in name:
                continue
            stage = name.split('stage="', 1)[1].split('"', 1)[0]
            totals.setdefault(stage, [0.0, 0.0])[0 if kind == "sum" else 1] += float(value)
        return {stage: (s, c) for stage, (s, c) in totals.items()}

    def outcomes(self, counter: str) -> dict[str, float]:
        """A counter's values by ``outcome`` label, summed over its other labels, from
        /metrics: ``tastebud_reco_precomputed_requests_total`` (hit, missing...),
        ``tastebud_experiment_exposures_total`` (written, dropped),
        ``tastebud_shadow_requests_total`` (compared, dropped...)."""
        counts: dict[str, float] = {}
        for line in self.metrics().splitlines():
            if line.startswith(counter + "{"):
                name, _, value = line.rpartition(" ")
                outcome = name.split('outcome="', 1)[1].split('"', 1)[0]
                counts[outcome] = counts.get(outcome, 0.0) + float(value)
        return counts


def stage_means(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """Mean ms per stage over the requests between two scrapes."""
    means = {}
    for stage, (total, count) in after.items():
        old_total, old_count = before.get(stage, (0.0, 0.0))
        if count > old_count:
            means[stage] = round((total - old_total) / (count - old_count), 3)
    return means


def user_ids(count: int, seed: int, unknown_share: float = 0.05) -> list[str]:
    """Zipf-like over the 100k users (hot users spread by a permutation), ~5% unknown ids."""
    rng = np.random.default_rng(seed)
    permutation = rng.permutation(N_USERS)
    known = permutation[rng.choice(N_USERS, size=count, p=zipf_weights(N_USERS, 0.8))]
    unknown = rng.random(count) < unknown_share
    return [
        f"nobody{int(rng.integers(1_000_000))}" if unknown[n] else f"u{known[n]}"
        for n in range(count)
    ]


# --- load generators (each runs in its own process) -----------------------------------------


Call = tuple[str, str, bytes | None]  # method, path, JSON body


def _encode(port: int, key: str, call: Call) -> bytes:
    method, path, body = call
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def reco_call(user: str, k: int, endpoint: str) -> Call:
    """One user's list: ``GET /v1/users/{id}/recommendations`` or, when that route is
    unreachable, the same ranking through ``POST /v1/recommendations`` with one user."""
    if endpoint == "get":
        return ("GET", f"/v1/users/{user}/recommendations?k={k}&explain=true", None)
    body = json.dumps({"users": [user], "k": k, "explain": True}).encode()
    return ("POST", "/v1/recommendations", body)


def listed(document: dict[str, Any]) -> dict[str, Any]:
    """The one user's list in a GET or a single-user POST response."""
    return document["results"][0] if "results" in document else document


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies) or [float("nan")]

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0)}


def open_loop(
    port: int, key: str, calls: list[Call], rate: float, connections: int, warmup: int
) -> dict[str, Any]:
    """``rate`` requests/s on a fixed schedule over ``connections`` keep-alive connections
    (request n on connection n % connections); latency from the scheduled start. The first
    ``warmup`` requests are sent on the same schedule but not counted."""
    requests = [_encode(port, key, call) for call in calls]
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def connection(offset: int, began: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for n in range(offset, len(requests), connections):
                scheduled = began + n / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(requests[n])
                await writer.drain()
                status = await read_response(reader)
                if n < warmup:
                    continue
                latencies.append(time.perf_counter() - scheduled)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        finally:
            writer.close()

    async def main() -> tuple[float, float]:
        began = time.perf_counter() + 0.2
        await asyncio.gather(*(connection(c, began) for c in range(connections)))
        return began + warmup / rate, time.perf_counter()

    start, end = asyncio.run(main())
    return {
        **percentiles(latencies),
        "requests": len(latencies),
        "offered_per_second": rate,
        "achieved_per_second": round(len(latencies) / (end - start), 1),
        "errors": sum(errors.values()),
        "error_statuses": errors,
    }


def closed_loop(
    port: int, key: str, calls: list[Call], connections: int, seconds: float, warmup: float
) -> dict[str, Any]:
    """``connections`` connections as fast as they can (calls taken in turn); requests
    completed per second after ``warmup`` seconds."""
    requests = [_encode(port, key, call) for call in calls]
    latencies: list[float] = []
    errors = 0

    async def connection(offset: int, measure_from: float, until: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = offset
        try:
            while True:
                started = time.perf_counter()
                if started >= until:
                    return
                writer.write(requests[n % len(requests)])
                n += connections
                await writer.drain()
                status = await read_response(reader)
                if started >= measure_from:
                    latencies.append(time.perf_counter() - started)
                    errors += status != 200
        finally:
            writer.close()

    async def main() -> float:
        began = time.perf_counter()
        measure_from = began + warmup
        until = measure_from + seconds
        await asyncio.gather(*(connection(c, measure_from, until) for c in range(connections)))
        return time.perf_counter() - measure_from

    wall = asyncio.run(main())
    return {
        "per_second": round(len(latencies) / wall, 1),
        "requests": len(latencies),
        "errors": errors,
        **percentiles(latencies),
    }


def _http(port: int, key: str, call: Call) -> tuple[int, bytes]:
    """One request on a new connection (SO_REUSEPORT picks a worker per connection)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    method, path, body = call
    try:
        headers = {"X-API-Key": key}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def realtime(
    port: int,
    key: str,
    users: list[str],
    k: int,
    endpoint: str,
    poll_seconds: float,
    give_up: float,
) -> dict[str, Any]:
    """Per user: list, play its top item, poll until the list changed without that item."""
    trials = []
    for user in users:
        call = reco_call(user, k, endpoint)
        status, body = _http(port, key, call)
        assert status == 200, (status, body[:200])
        before = [item["item_id"] for item in listed(json.loads(body))["items"]]
        event = {
            "event_id": f"rt-{uuid.uuid4().hex}",
            "user_id": user,
            "item_id": before[0],
            "event_type": "play",
            "timestamp": time.time(),
        }
        sent = time.perf_counter()
        status, body = _http(port, key, ("POST", "/v1/events", json.dumps(event).encode()))
        acked = time.perf_counter()
        assert status in (200, 202), (status, body[:200])
        polls = 0
        seen_at = None
        while time.perf_counter() - acked < give_up:
            polls += 1
            status, body = _http(port, key, call)
            now = time.perf_counter()
            if status == 200:
                after = [item["item_id"] for item in listed(json.loads(body))["items"]]
                if after != before and before[0] not in after:
                    seen_at = now
                    break
            time.sleep(poll_seconds)
        trials.append(
            {
                "user": user,
                "ack_ms": round((acked - sent) * 1000, 2),
                "from_ack_ms": None if seen_at is None else round((seen_at - acked) * 1000, 2),
                "from_send_ms": None if seen_at is None else round((seen_at - sent) * 1000, 2),
                "polls": polls,
            }
        )
    return {"trials": trials}


def summarize_realtime(trials: list[dict[str, Any]], limit_s: float) -> dict[str, Any]:
    def stats(key: str) -> dict[str, float]:
        values = [t[key] / 1000 for t in trials if t[key] is not None]
        return percentiles(values) if values else {}

    late = [t for t in trials if t["from_ack_ms"] is None or t["from_ack_ms"] > limit_s * 1000]
    return {
        "trials": len(trials),
        "from_ack": stats("from_ack_ms"),
        "from_send": stats("from_send_ms"),
        "ack": stats("ack_ms"),
        "polls_median": statistics.median(t["polls"] for t in trials),
        "over_limit": len(late),
        "never_changed": sum(1 for t in trials if t["from_ack_ms"] is None),
    }


def check(port: int, key: str, k: int, version: str, endpoint: str) -> tuple[str, list[str]]:
    """The endpoint to measure (``auto``: GET unless the server cannot route it) and u1's list,
    which must hold k items from the registered version."""
    if endpoint == "auto":
        status, body = _http(port, key, reco_call("u1", k, "get"))
        endpoint = "get" if status == 200 else "post"
        if endpoint == "post":
            print(
                f"GET recommendations answered {status}: {body[:160]!r}; measuring the same"
                " ranking through POST /v1/recommendations",
                flush=True,
            )
    status, body = _http(port, key, reco_call("u1", k, endpoint))
    assert status == 200, (status, body[:300])
    document = listed(json.loads(body))
    assert len(document["items"]) == k, document
    assert document["model_version"] == version, (document["model_version"], version)
    return endpoint, [item["item_id"] for item in document["items"]]


def wait_for_shadow(port: int, key: str, workers: int, timeout: float = 180.0) -> None:
    """Until every worker ranks with its shadow model (its load is not what is measured):
    new connections land on workers at random, so many answers in a row must say so."""
    deadline = time.monotonic() + timeout
    ready = 0
    while ready < 8 * workers:
        status, body = _http(port, key, ("GET", "/v1/monitoring/shadow", None))
        ready = ready + 1 if status == 200 and json.loads(body)["shadow_version"] else 0
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the shadow model did not load within {timeout:g} s: {body[:300]!r}"
            )
        time.sleep(0.05 if ready else 0.5)


# --- main ------------------------------------------------------------------------------------


def one_run(server: Server, args: argparse.Namespace, run: int) -> dict[str, Any]:
    total = int(args.rate * (args.seconds + args.warmup))
    calls = [reco_call(user, args.k, args.endpoint) for user in user_ids(total, seed=run)]
    before = server.stage_totals()
    opened = run_in_process(
        open_loop,
        server.port,
        server.key,
        calls,
        args.rate,
        args.open_connections,
        int(args.rate * args.warmup),
    )
    after = server.stage_totals()
    calls = [reco_call(user, args.k, args.endpoint) for user in user_ids(20_000, seed=100 + run)]
    healthz = run_in_process(
        closed_loop,
        server.port,
        server.key,
        [("GET", "/healthz", None)],
        args.connections,
        args.capacity_seconds,
        1.0,
    )
    reco = run_in_process(
        closed_loop, server.port, server.key, calls, args.connections, args.capacity_seconds, 1.0
    )
    return {
        "run": run,
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "open_loop": opened,
        "open_loop_stage_ms": stage_means(before, after),
        "capacity": {
            "healthz": healthz,
            "recommendations": reco,
            "ratio": round(reco["per_second"] / healthz["per_second"], 3),
        },
    }


def table(results: dict[str, dict[str, Any]], rt: dict[str, Any]) -> str:
    lines = [
        "| mode | run | p50 ms | p95 ms | p99 ms | max ms | achieved/s | errors | healthz/s |"
        " reco/s | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, result in results.items():
        for r in [*result["runs"], {"run": "median", **result["medians"]}]:
            o, c = r["open_loop"], r["capacity"]
            lines.append(
                f"| {mode} | {r['run']} | {o['p50_ms']} | {o['p95_ms']} | {o['p99_ms']} | "
                f"{o['max_ms']} | {o['achieved_per_second']} | {o['errors']} | "
                f"{c['healthz']['per_second']} | {c['recommendations']['per_second']} | "
                f"{c['ratio']} |"
            )
    lines += [
        "",
        "| real-time | p50 ms | p95 ms | max ms | trials over 1 s |",
        "|---|---|---|---|---|",
    ]
    for name in ("from_ack", "from_send"):
        s = rt[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {s.get('p50_ms')} | {s.get('p95_ms')} | "
            f"{s.get('max_ms')} | {rt['over_limit']} of {rt['trials']} |"
        )
    return "\n".join(lines)


def medians_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(get: Any) -> float:
        return round(statistics.median(get(r) for r in runs), 3)

    return {
        "open_loop": {
            key: med(lambda r, key=key: r["open_loop"][key])
            for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "achieved_per_second", "errors")
        },
        "capacity": {
            "healthz": {"per_second": med(lambda r: r["capacity"]["healthz"]["per_second"])},
            "recommendations": {
                "per_second": med(lambda r: r["capacity"]["recommendations"]["per_second"])
            },
            "ratio": med(lambda r: r["capacity"]["ratio"]),
        },
    }


STATES: dict[str, list[bool | None]] = {
    "default": [None],
    "off": [False],
    "on": [True],
    "both": [False, True],
}


def configurations(
    mode: str, exposures: str, shadow: str = "default", sample: float = 0.1
) -> list[tuple[str, dict[str, str]]]:
    """(label, server settings) of one mode: one, or exposure logging and/or the shadow
    model off and on (every combination asked for)."""
    env = {"TASTEBUD_SERVING__PRECOMPUTED": "true" if mode == "precomputed" else "false"}
    made = []
    for state in STATES[exposures]:
        for shadowed in STATES[shadow]:
            label, settings = mode, dict(env)
            if state is not None:
                settings["TASTEBUD_EXPERIMENTS__EXPOSURES"] = "true" if state else "false"
                label += f", exposures {'on' if state else 'off'}"
            if shadowed is not None:
                settings["TASTEBUD_MONITORING__SHADOW_SAMPLE"] = str(sample if shadowed else 0.0)
                label += f", shadow {'on' if shadowed else 'off'}"
            made.append((label, settings))
    return made


def register_shadow(home: Path, production: str) -> str:
    """Production's model registered again as a new version under the ``shadow`` alias (the
    cost of ranking with a shadow is what is measured; its lists equal production's)."""
    from tastebud.config import load_settings
    from tastebud.models.base import Recommender
    from tastebud.registry import open_registry
    from tastebud.stores import open_stores

    settings = load_settings(home=home)
    stores = open_stores(settings)
    try:
        registry = open_registry(settings, stores.artifacts)
        shadow = registry.aliases().get("shadow")
        if shadow is not None and shadow != production:
            return shadow
        manifest = registry.get(production)
        model = registry.load(production, Recommender.load)
        with tempfile.TemporaryDirectory() as scratch:
            folder = model.save(Path(scratch) / "model")
            fields = manifest.model_dump(mode="json")
            kept = {k: fields[k] for k in ("model", "user_count", "item_count", "embedding_dim",
                                            "params", "time_range") if k in fields}  # fmt: skip
            return registry.register(folder, kept, aliases=["shadow"]).model_version
    finally:
        stores.close()


def summarize_mode(server: Server, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "medians": medians_of(runs),
        "open_loop_stage_ms_median": {
            stage: round(
                statistics.median(r["open_loop_stage_ms"].get(stage, 0.0) for r in runs), 3
            )
            for stage in runs[0]["open_loop_stage_ms"]
        },
        "precomputed_outcomes": server.outcomes("tastebud_reco_precomputed_requests_total"),
        "exposures": server.outcomes("tastebud_experiment_exposures_total"),
        "shadow": server.outcomes("tastebud_shadow_requests_total"),
        "all_requests_stage_ms": stage_means({}, server.stage_totals()),
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="Cached setup (default: temp).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0, help="Open loop, measured.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Open loop, not measured.")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--open-connections", type=int, default=16)
    parser.add_argument("--connections", type=int, default=8, help="Closed loop.")
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument(
        "--endpoint",
        choices=("auto", "get", "post"),
        default="auto",
        help="auto: GET /v1/users/{id}/recommendations, or POST /v1/recommendations with one"
        " user when the GET route is unreachable (it is shadowed by GET /v1/users/{id:path}).",
    )
    parser.add_argument(
        "--cf",
        type=int,
        default=500,
        help="CF candidates (TASTEBUD_RANKING__CANDIDATES__CF); with popular and new ones the"
        " merged set is capped at candidates.max_total (500).",
    )
    parser.add_argument("--trials", type=int, default=100, help="Real-time trials.")
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interactions", type=int, default=5_000_000, help="Before dedup.")
    parser.add_argument("--iterations", type=int, default=15, help="ALS iterations.")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Extra server setting, e.g. TASTEBUD_SERVING__CATALOG_REFRESH_SECONDS=3600.",
    )
    parser.add_argument(
        "--modes",
        default="precomputed,on-demand",
        help="Server configurations, one after the other in this run: precomputed (the"
        " default: the recommendations job's stored lists) and/or on-demand (every request"
        " ranked; TASTEBUD_SERVING__PRECOMPUTED=false). Targets are checked on the first.",
    )
    parser.add_argument(
        "--exposures",
        choices=("default", "off", "on", "both"),
        default="default",
        help="Exposure logging (experiments.exposures): both runs each mode with it off and"
        " on, two servers up at once and their runs alternating, side by side.",
    )
    parser.add_argument(
        "--shadow",
        choices=("default", "off", "on", "both"),
        default="default",
        help="The shadow model ([monitoring] shadow_sample): both runs each mode with it off"
        " and on, two servers up at once and their runs alternating, side by side; the shadow"
        " is production's model registered again under the `shadow` alias.",
    )
    parser.add_argument("--shadow-sample", type=float, default=0.1)
    parser.add_argument(
        "--reuse-lists",
        action="store_true",
        help="Skip the recommendations job: a cached --home's stored lists hold while the"
        " model and the ranking settings are unchanged.",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.server_env)

    # A SIGTERM (timeout, Ctrl-C from a wrapper) unwinds the ``with``: the server goes too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    machine = describe()
    print(json.dumps(machine), flush=True)
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    results: dict[str, dict[str, Any]] = {}
    rt_raw: dict[str, Any] = {}
    realtime_stage_ms: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
        home = args.home or Path(scratch) / "home"
        setup = prepare(home, args.interactions, args.iterations)
        job = None
        if args.shadow != "default":
            setup["shadow_version"] = register_shadow(home, setup["model_version"])
        if "precomputed" in modes and not args.reuse_lists:
            job = precompute(home, args.cf)
        for mode in modes:
            group = configurations(mode, args.exposures, args.shadow, args.shadow_sample)
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in group}
            with contextlib.ExitStack() as stack:
                servers = {
                    label: stack.enter_context(Server(home, args.workers, args.cf, extra_env | env))
                    for label, env in group
                }
                for label, server in servers.items():
                    args.endpoint, sample = check(
                        server.port, server.key, args.k, setup["model_version"], args.endpoint
                    )
                    print(f"{label} check ({args.endpoint}): u1 ->", sample[:5], "...", flush=True)
                    if "shadow on" in label:
                        wait_for_shadow(server.port, server.key, args.workers)
                for run in range(args.runs):  # configurations alternate within a run
                    for label, server in servers.items():
                        outcome = one_run(server, args, run)
                        outcome["mode"] = label
                        print(json.dumps(outcome), flush=True)
                        runs[label].append(outcome)
                for label, server in servers.items():
                    if not rt_raw:  # the first configuration (the default)
                        rng = np.random.default_rng(7)
                        picked = rng.choice(N_USERS, size=args.trials, replace=False)
                        before = server.stage_totals()
                        rt_raw = run_in_process(
                            realtime,
                            server.port,
                            server.key,
                            [f"u{n}" for n in picked],
                            args.k,
                            args.endpoint,
                            args.poll_ms / 1000,
                            5.0,
                        )
                        realtime_stage_ms = stage_means(before, server.stage_totals())
                    results[label] = summarize_mode(server, runs[label])
    rt = summarize_realtime(rt_raw["trials"], TARGETS["realtime_max_s"])
    first = next(iter(results))
    medians = results[first]["medians"]
    checks = {
        "p95_ms": medians["open_loop"]["p95_ms"],
        "capacity_ratio": medians["capacity"]["ratio"],
        "realtime_max_s": (rt["from_ack"].get("max_ms") or float("inf")) / 1000,
    }
    failed = [
        name
        for name, value in checks.items()
        if (value < TARGETS[name] if name == "capacity_ratio" else value > TARGETS[name])
    ]
    if medians["open_loop"]["errors"] or rt["never_changed"]:
        failed.append("errors")
    document = {
        "benchmark": "serving",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {
            **{k: str(v) for k, v in vars(args).items()},
            "candidates_max_total": 500,
            "mmr": True,
            "online_store": "sqlite (embedded default)",
        },
        "setup": setup,
        "precompute_job": job,
        "targets": TARGETS,
        "checks_mode": first,
        "checks": checks,
        "missed": failed,
        "modes": results,
        "realtime": rt,
        "realtime_stage_ms": realtime_stage_ms,
        "realtime_trials": rt_raw["trials"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print()
    print(table(results, rt))
    print()
    for mode, result in results.items():
        print(f"{mode}: stage means (ms, open loop, median of runs):", end=" ")
        print(json.dumps(result["open_loop_stage_ms_median"]))
        print(f"{mode}: precomputed outcomes:", json.dumps(result["precomputed_outcomes"]))
    print(json.dumps({k: document[k] for k in ("checks_mode", "checks", "missed", "realtime")}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
