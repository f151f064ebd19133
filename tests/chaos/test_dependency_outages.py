"""Chaos: ``tastebud serve --workers 2`` on its own Redis (online store) and its own
PostgreSQL cluster, under an open-loop load of recommendation reads and event writes, while a
dependency hangs (Redis SIGSTOP), dies (Redis SIGKILL, restarted empty) or stops (PostgreSQL
``pg_ctl stop -m fast``, restarted). Issue 16's targets, with CI-sized durations
(``benchmarks/bench_chaos.py`` runs the issue's full ones):

* recommendation p99 under 100 ms and no 5xx (nor client timeout) for reads, throughout;
* while Redis is out, every recommendation says ``degraded: true``; while PostgreSQL is,
  reads are still answered (the API key from the outage cache);
* ``/readyz`` answers within 1 s during the fault and blames only the failing store;
* recovery within 5 s of the dependency's return (no degraded read, no failed write after);
* every acknowledged event is stored exactly once.

The machine is shared: when other work starves the processes, every answer is slow, and
now and then degraded before any fault too (a 50 ms Redis budget missed). So the latency
bound widens to ``NOISE_FACTOR`` times the machine's noise: the p99 of the same reads before
the fault, or of ``/healthz`` asked alongside (it touches no store, so a dependency that
holds requests up does not slow it); no read may take ``SLOWEST_S``. After recovery, reads
may be degraded as often as before the fault (plus ``NOISE_SHARE``). Without the budgets a
paused Redis gave a read p99 of 9.1 s, against 182 ms before the fault on a busy machine,
and no degraded answer at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from api.gateway_testing import ServerProcess, free_port, server_env
from chaos.harness import Load, Report, build_world, report, stored_once
from chaos.services import PostgresCluster, RedisServer, need

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

RATE = 50.0
P99_MS = 100.0
RECOVERY_S = 5.0
READY_S = 1.0
NOISE_FACTOR = 5.0
NOISE_SHARE = 0.02
SLOWEST_S = 2.0


@dataclass
class Stack:
    server: ServerProcess
    redis: RedisServer
    postgres: PostgresCluster
    key: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need(RedisServer.available(), "redis-server")
    need(PostgresCluster.available(), "PostgreSQL's initdb and pg_ctl")
    folder = tmp_path_factory.mktemp("chaos")
    postgres = PostgresCluster().init().start()
    redis_server = RedisServer(folder / "redis").start()
    server = None
    try:
        home = folder / "home"
        key = build_world(home, postgres.url, redis_server.url)
        env = server_env(
            home,
            TASTEBUD_DATABASE_URL=postgres.url,
            TASTEBUD_ONLINE_URL=redis_server.url,
            TASTEBUD_SERVING__CATALOG_REFRESH_SECONDS="3",
        )
        server = ServerProcess(env, free_port(), workers=2, log=folder / "server.log")
        server.start()
        warm = Load(server.port, key, RATE, 2.0)  # both workers ranked and keys cached
        warm.run()
        yield Stack(server, redis_server, postgres, key)
    finally:
        if server is not None:
            server.stop()
        redis_server.stop()
        postgres.destroy()


def readiness(stack: Stack) -> tuple[float, int, dict[str, str]]:
    started = time.monotonic()
    response = httpx.get(f"{stack.server.url}/readyz", timeout=10)
    return time.monotonic() - started, response.status_code, response.json()["checks"]


def check_reads(result: Report) -> None:
    """No read failed; p99 within target (or the machine's noise); recovered in 5 s."""
    assert set(result.reco_statuses) == {"200"}, result
    noise = max(result.before_fault_p99_ms, result.healthz_p99_ms)
    assert result.reco_p99_ms < max(P99_MS, NOISE_FACTOR * noise), result
    assert result.reco_max_ms < SLOWEST_S * 1000, result
    assert result.degraded_after_recovery <= result.before_fault_degraded + NOISE_SHARE, result


def test_redis_paused(stack: Stack) -> None:
    load = Load(stack.server.port, stack.key, RATE, 18.0, seed=1)
    load.start()
    time.sleep(4.0)
    stack.redis.pause()
    fault_start = load.now()
    try:
        time.sleep(2.0)
        seconds, status, checks = readiness(stack)
        time.sleep(4.0)
    finally:
        stack.redis.resume()
    fault_end = load.now()
    load.join()
    assert load.error is None
    result = report(load, fault_start, fault_end, recovery=RECOVERY_S)
    check_reads(result)
    assert set(result.event_statuses) == {"202"}, result  # events go to PostgreSQL
    assert result.degraded_during_fault == 1.0, result
    assert seconds < READY_S and status == 503, (seconds, checks)
    assert checks["online"] != "ok"
    assert {checks[name] for name in ("events", "catalog", "dead_letters")} == {"ok"}, checks
    stored_once(load, stack.postgres.url)


def test_redis_killed_and_restarted_empty(stack: Stack) -> None:
    load = Load(stack.server.port, stack.key, RATE, 18.0, seed=2)
    load.start()
    time.sleep(4.0)
    stack.redis.kill()
    fault_start = load.now()
    time.sleep(2.0)
    seconds, status, checks = readiness(stack)
    time.sleep(4.0)
    stack.redis.start()
    fault_end = load.now()
    load.join()
    assert load.error is None
    result = report(load, fault_start, fault_end, recovery=RECOVERY_S)
    check_reads(result)
    assert set(result.event_statuses) == {"202"}, result
    assert result.degraded_during_fault == 1.0, result
    assert seconds < READY_S and status == 503 and checks["online"] != "ok", checks
    stored_once(load, stack.postgres.url)


def test_postgres_stopped_and_restarted(stack: Stack) -> None:
    load = Load(stack.server.port, stack.key, RATE, 18.0, seed=3)
    load.start()
    time.sleep(4.0)
    stack.postgres.stop()
    fault_start = load.now()
    try:
        time.sleep(2.0)
        seconds, status, checks = readiness(stack)
        time.sleep(4.0)
    finally:
        stack.postgres.start()
    fault_end = load.now()
    load.join()
    assert load.error is None
    result = report(load, fault_start, fault_end, recovery=RECOVERY_S)
    # Reads need no database: the model is in process, the key in the outage cache.
    check_reads(result)
    # Writes during the outage may be refused (503: nothing acknowledged, the client
    # retries), never left hanging; within 5 s of the return they are accepted again.
    assert set(result.event_statuses) <= {"202", "503"}, result
    assert (result.last_failed_write_after_return_s or 0.0) < RECOVERY_S, result
    assert seconds < READY_S and status == 503, (seconds, checks)
    assert checks["online"] == "ok"
    assert all(checks[name] != "ok" for name in ("events", "catalog", "dead_letters")), checks
    stored_once(load, stack.postgres.url)
