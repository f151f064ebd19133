"""The chaos harness: a served world on given stores, a real server (``tastebud serve``), an
open-loop load of recommendations and events recorded request by request, and the checks
of issue 16's targets over what it recorded. ``benchmarks/bench_chaos.py`` runs the same
scenarios for the issue's full durations."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tastebud.config import load_settings
from tastebud.registry import open_registry
from tastebud.stores import open_stores

N_USERS = 120  # u0..u119 are in the model (tests/interaction_data.clustered_table)
N_ITEMS = 60
CANARY_EVERY = 5


def build_world(home: Path, database_url: str, online_url: str) -> str:
    """Catalog and a small ALS model as ``production`` on these stores; returns an
    unlimited key with the read and ingest scopes."""
    from ranking.serving_world import catalog_items, fitted_model, register

    settings = load_settings(home=home, database_url=database_url, online_url=online_url)
    with open_stores(settings) as stores:
        stores.catalog.upsert_items(catalog_items())
        register(
            open_registry(settings, stores.artifacts),
            fitted_model(),
            datetime(2023, 12, 31, tzinfo=UTC),
        )
        created = stores.database.gateway.keys.create(
            ["read", "ingest"], "chaos", rate_per_second=1e6, burst=1e6
        )
        assert created is not None
        return created[1]


@dataclass
class Record:
    """One request: its kind, when it started (seconds since the load began), how long it
    took, its status (an HTTP status, or the client error's name) and what it answered."""

    kind: str  # "reco" or "events"
    started: float
    seconds: float
    status: str
    degraded: bool = False
    reasons: tuple[str, ...] = ()
    acknowledged: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)


async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return int(lines[0].split()[1]), body


class Load(threading.Thread):
    """``rate`` requests/s on a fixed schedule for ``seconds`` (open loop: a slow answer
    does not delay the next request), ``reco_share`` of them recommendation reads of known
    and unknown users, the rest event batches of 1-3 new events; besides, a ``/healthz``
    every ``CANARY_EVERY`` requests, a canary for the machine's own stalls (it touches no
    store). Each request has its own keep-alive connection from a pool, and ``timeout``
    seconds to answer."""

    def __init__(
        self,
        port: int,
        key: str,
        rate: float,
        seconds: float,
        *,
        reco_share: float = 0.7,
        timeout: float = 10.0,
        seed: int = 0,
    ) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.key = key
        self.rate = rate
        self.seconds = seconds
        self.reco_share = reco_share
        self.timeout = timeout
        self.rng = random.Random(seed)
        self.prefix = uuid.uuid4().hex[:8]
        self.records: list[Record] = []
        self.began = 0.0
        self.error: BaseException | None = None

    def now(self) -> float:
        """Seconds since the load began (the clock the records use)."""
        return time.monotonic() - self.began

    def _request(self, n: int) -> tuple[str, bytes, list[str]]:
        if self.rng.random() < self.reco_share:
            known = self.rng.random() < 0.9
            user = f"u{self.rng.randrange(N_USERS)}" if known else f"nobody{n}"
            path = f"/v1/users/{user}/recommendations"
            head = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {self.key}\r\n\r\n"
            return "reco", head.encode(), []
        ids = [f"{self.prefix}-{n}-{i}" for i in range(self.rng.randint(1, 3))]
        events = [
            {
                "event_id": event_id,
                "user_id": f"u{self.rng.randrange(N_USERS)}",
                "item_id": f"i{self.rng.randrange(N_ITEMS)}",
                "event_type": "play",
                "timestamp": time.time(),
            }
            for event_id in ids
        ]
        body = json.dumps({"events": events}).encode()
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-API-Key: {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return "events", head.encode() + body, ids

    async def _one(
        self, idle: list[Any], call: tuple[str, bytes, list[str]], scheduled: float
    ) -> None:
        kind, request, ids = call
        status, body = "", b""
        try:
            code, body = await self._exchange(idle, request)
            status = str(code)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            status = type(error).__name__
        record = Record(kind, scheduled, self.now() - scheduled, status, sent=ids)
        if status in ("200", "202"):
            document = json.loads(body)
            if kind == "reco":
                record.degraded = bool(document["degraded"])
                record.reasons = tuple(document["degraded_reasons"])
            elif kind == "events":
                record.acknowledged = [
                    result["event_id"]
                    for result in document["results"]
                    if result["status"] in ("accepted", "duplicate")
                ]
        self.records.append(record)

    async def _exchange(self, idle: list[Any], request: bytes) -> tuple[int, bytes]:
        """Send on an idle connection, or a new one; a kept-alive connection the server
        closed meanwhile (it sent nothing) is replaced once."""
        reused = bool(idle)
        reader, writer = idle.pop() if idle else await self._connect()
        try:
            writer.write(request)
            answer = await asyncio.wait_for(_read(reader), self.timeout)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            writer.close()
            if not reused or (isinstance(error, asyncio.IncompleteReadError) and error.partial):
                raise
            reader, writer = await self._connect()
            try:
                writer.write(request)
                answer = await asyncio.wait_for(_read(reader), self.timeout)
            except BaseException:
                writer.close()
                raise
        except BaseException:
            writer.close()
            raise
        idle.append((reader, writer))
        return answer

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def _run(self) -> None:
        idle: list[Any] = []
        tasks = []
        total = int(self.rate * self.seconds)
        for n in range(total):
            scheduled = n / self.rate
            delay = scheduled - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._one(idle, self._request(n), scheduled)))
            if n % CANARY_EVERY == 0:
                canary = ("healthz", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", [])
                tasks.append(asyncio.create_task(self._one(idle, canary, scheduled)))
        await asyncio.gather(*tasks)
        for _, writer in idle:
            writer.close()

    def run(self) -> None:
        self.began = time.monotonic()
        try:
            asyncio.run(self._run())
        except BaseException as error:
            self.error = error


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass
class Report:
    """What a scenario's load saw, for its assertions and the benchmark's record. Times are
    seconds since the load began; "return" is the dependency's return (``fault_end``)."""

    reco_p50_ms: float
    reco_p99_ms: float
    reco_max_ms: float
    reco_statuses: dict[str, int]
    event_statuses: dict[str, int]
    healthz_p99_ms: float  # the machine's noise: the canary, which touches no store
    before_fault_p99_ms: float  # and the same load before the fault
    before_fault_degraded: float  # share of reads degraded before the fault
    degraded_during_fault: float  # share of reads degraded in the fault window
    degraded_after_recovery: float  # share degraded from `recovery` after the return on
    last_degraded_after_return_s: float | None  # when the last degraded read started
    last_failed_write_after_return_s: float | None
    degraded_reasons: dict[str, int]
    degraded_after_return_s: dict[int, int]  # degraded reads per second after the return
    requests: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def share(records: list[Record]) -> float:
    return round(sum(r.degraded for r in records) / max(1, len(records)), 4)


def report(
    load: Load, fault_start: float, fault_end: float, *, grace: float = 0.3, recovery: float = 5.0
) -> Report:
    """Latency and answers of the recommendation reads over the whole load and before the
    fault; the share marked degraded before it, between ``fault_start + grace`` and
    ``fault_end``, and from ``recovery`` seconds after the return on; and when the last
    degraded read and the last failed write started, counted from the return."""
    recos = [r for r in load.records if r.kind == "reco"]
    writes = [r for r in load.records if r.kind == "events"]
    answered = [r for r in recos if r.status == "200"]
    before = [r for r in recos if r.started < fault_start]
    during = [r for r in answered if fault_start + grace <= r.started < fault_end]
    recovered = [r for r in answered if r.started >= fault_end + recovery]
    degraded_after = [
        r.started - fault_end for r in answered if r.degraded and r.started >= fault_end
    ]
    failed_after = [
        r.started - fault_end for r in writes if r.status != "202" and r.started >= fault_end
    ]
    latencies = [r.seconds * 1000 for r in recos]
    return Report(
        reco_p50_ms=round(percentile(latencies, 0.5), 2),
        reco_p99_ms=round(percentile(latencies, 0.99), 2),
        reco_max_ms=round(max(latencies, default=0.0), 2),
        reco_statuses=dict(Counter(r.status for r in recos)),
        event_statuses=dict(Counter(r.status for r in writes)),
        healthz_p99_ms=round(
            percentile([r.seconds * 1000 for r in load.records if r.kind == "healthz"], 0.99), 2
        ),
        before_fault_p99_ms=round(percentile([r.seconds * 1000 for r in before], 0.99), 2),
        before_fault_degraded=share([r for r in before if r.status == "200"]),
        degraded_during_fault=share(during),
        degraded_after_recovery=share(recovered),
        last_degraded_after_return_s=round(max(degraded_after), 3) if degraded_after else None,
        last_failed_write_after_return_s=round(max(failed_after), 3) if failed_after else None,
        degraded_reasons=dict(Counter(reason for r in answered for reason in r.reasons)),
        degraded_after_return_s=dict(sorted(Counter(int(t) for t in degraded_after).items())),
        requests=len(load.records),
    )


def stored_once(load: Load, database_url: str) -> dict[str, int]:
    """Every acknowledged event is stored exactly once, and nothing is stored that was not
    sent; returns the counts."""
    import psycopg

    acknowledged = {event_id for r in load.records for event_id in r.acknowledged}
    sent = {event_id for r in load.records for event_id in r.sent}
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT event_id, count(*) FROM events WHERE event_id LIKE %s GROUP BY event_id",
            (f"{load.prefix}-%",),
        ).fetchall()
    stored = dict(rows)
    assert all(count == 1 for count in stored.values()), "an event was stored twice"
    missing = acknowledged - stored.keys()
    assert not missing, f"{len(missing)} acknowledged events were not stored"
    assert stored.keys() <= sent
    return {"acknowledged": len(acknowledged), "stored": len(stored), "sent": len(sent)}
