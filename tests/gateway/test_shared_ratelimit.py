"""The Redis token bucket shared by every node: one bucket across limiters (as across
processes), atomic under concurrent takes, and a hung Redis (SIGSTOP on a real server) that
costs at most one short timeout before the process's own bucket answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from chaos.services import RedisServer, need

from tastebud.config import BudgetSettings
from tastebud.gateway.ratelimit import RateLimiter
from tastebud.gateway.shared_ratelimit import FALLBACKS, RedisRateLimiter, limiter_for
from tastebud.stores.online import MemoryOnlineStore, RedisOnlineStore

pytestmark = pytest.mark.redis

BUDGETS = BudgetSettings(online_ms=50.0, breaker_failures=2, breaker_reset_seconds=0.5)


def limiter(url: str, budgets: BudgetSettings = BUDGETS) -> RedisRateLimiter:
    store = RedisOnlineStore(url)
    shared = limiter_for(store, budgets)
    store.close()
    assert isinstance(shared, RedisRateLimiter)
    return shared


async def _takes(limiters: list[RedisRateLimiter], n: int, rate: float, burst: float) -> int:
    waits = await asyncio.gather(
        *(limiters[i % len(limiters)].take("k", rate, burst) for i in range(n))
    )
    return sum(wait == 0 for wait in waits)


def test_two_limiters_share_one_bucket(redis_url: str) -> None:
    async def scenario() -> None:
        first, second = limiter(redis_url), limiter(redis_url)
        try:
            # One token every 2 s: a loaded machine's pauses between calls stay well inside it.
            assert [await first.take("k", 0.5, 3.0) for _ in range(3)] == [0.0, 0.0, 0.0]
            emptied = time.monotonic()
            wait = await second.take("k", 0.5, 3.0)  # the other node sees the same bucket
            assert 2.0 - (time.monotonic() - emptied) - 0.01 < wait <= 2.0
            assert await second.peek("k", 0.5, 3.0) > 0
            assert await second.take("other", 0.5, 3.0) == 0  # buckets are per key
            await asyncio.sleep(wait + 0.05)
            assert await second.peek("k", 0.5, 3.0) == 0  # peeking takes nothing...
            assert await second.take("k", 0.5, 3.0) == 0  # ...so the refilled token is here
            assert await first.take("k", 0.5, 3.0) > 0
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(scenario())


def test_concurrent_takes_never_exceed_the_burst(redis_url: str) -> None:
    # The script's atomicity, not the budget: 200 connections opened at once on a busy
    # machine may take longer than 50 ms (and would then fall back to the local buckets).
    patient = BudgetSettings(online_ms=5000.0)

    async def scenario() -> int:
        limiters = [limiter(redis_url, patient) for _ in range(3)]
        try:
            return await _takes(limiters, 200, rate=0.001, burst=25.0)
        finally:
            for each in limiters:
                await each.aclose()

    assert asyncio.run(scenario()) == 25


def test_buckets_expire_once_full_again(redis_url: str) -> None:
    async def scenario() -> None:
        shared = limiter(redis_url)
        try:
            await shared.take("k", 10.0, 5.0)
        finally:
            await shared.aclose()

    asyncio.run(scenario())
    client = redis.Redis.from_url(redis_url.split("?")[0])
    prefix = RedisOnlineStore(redis_url).prefix
    ttl_ms = client.pttl(f"{prefix}ratelimit:k")
    client.close()
    assert 0 < ttl_ms <= 1500  # burst / rate = 0.5 s to refill, plus a second


def test_embedded_store_keeps_the_process_bucket(redis_url: str) -> None:
    assert isinstance(limiter_for(MemoryOnlineStore(), BUDGETS), RateLimiter)
    store = RedisOnlineStore(redis_url)
    assert isinstance(limiter_for(store, BUDGETS, shared=False), RateLimiter)  # opted out
    store.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    need(RedisServer.available(), "redis-server")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_a_hung_redis_falls_back_to_the_local_bucket(own_redis: RedisServer) -> None:
    async def scenario() -> None:
        shared = limiter(own_redis.url)
        try:
            assert await shared.take("k", 1.0, 2.0) == 0  # shared: one token left in Redis
            own_redis.pause()
            before = FALLBACKS._value.get()
            started = time.monotonic()
            waits = [await shared.take("k", 1.0, 2.0) for _ in range(4)]
            elapsed = time.monotonic() - started
            # Two calls time out (50 ms each) and open the breaker; the rest fail at once.
            assert elapsed < 0.5, elapsed
            assert FALLBACKS._value.get() - before == 4
            assert waits[:2] == [0.0, 0.0] and waits[2] > 0  # the local bucket (burst 2)
            assert shared.breaker.state == "open"
            own_redis.resume()
            await asyncio.sleep(0.6)  # the breaker lets a trial through: Redis again
            before = FALLBACKS._value.get()
            # (A new key: Redis ran the timed-out calls once it woke, so "k" may be empty.)
            assert await shared.take("fresh", 1.0, 2.0) == 0
            assert shared.breaker.state == "closed"
            assert FALLBACKS._value.get() == before
        finally:
            own_redis.resume()
            await shared.aclose()

    asyncio.run(scenario())
