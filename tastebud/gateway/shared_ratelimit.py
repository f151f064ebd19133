"""Token buckets in Redis, shared by every worker and node that serves one deployment: a key
limited to R requests/s gets R/s in total, not R/s per process.

Why a Lua script over redis-py rather than the ``limits`` library: ``limits`` offers fixed and
sliding windows, not the token bucket (rate plus burst, and a Retry-After computed from the
missing tokens) the in-process limiter and the API keys' settings already describe, so its
semantics would change with the deployment. The script is that same bucket, atomic in Redis,
one round trip (EVALSHA) per request, one key per bucket (Redis Cluster safe), and timed by
Redis' own clock (``TIME``) so nodes whose clocks disagree still share one bucket.

The request path must not wait on a hung Redis (``tastebud.stores.budget``): each call has
the budget's online timeout and passes the online store's circuit breaker, so a Redis the
store already found down is not tried at all. When Redis fails or is slow, the request is
limited by the process's own bucket instead (as before this module: per process) and the
fallback is counted in ``tastebud_gateway_ratelimit_fallbacks_total``. The client is
``redis.asyncio``: the API's dependencies run on the event loop, which a blocking call would
stall for every request at once.

The price is one Redis round trip per request: about 0.35 ms and 0.23 ms of the worker's
CPU here (``benchmarks/bench_ratelimit.py``, docs/benchmarks.md), against about 0.5 ms of
CPU for a precomputed list. Where a balancer or API gateway in front already enforces the
quotas, ``gateway.shared_rate_limits = false`` keeps the per-worker buckets.
"""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tastebud.config import BudgetSettings
from tastebud.gateway.ratelimit import Limiter, RateLimiter
from tastebud.observability import get_logger, metrics
from tastebud.stores.base import OnlineStore, StoreUnavailable
from tastebud.stores.budget import CircuitBreaker, RequestBudget, current_budget
from tastebud.stores.online import RedisOnlineStore

log = get_logger("tastebud.gateway")

FALLBACKS = metrics.counter(
    "gateway",
    "ratelimit_fallbacks",
    "total",
    "Rate-limit checks answered by the process's own bucket because Redis failed or was slow.",
)

# KEYS[1]: the bucket; ARGV: rate (tokens/s), burst, cost, take (1) or only look (0).
# Returns the seconds to wait as a string ("0" when allowed). Times are formatted with
# string.format: Lua's tostring keeps 14 digits, too few for epoch seconds with microseconds.
TOKEN_BUCKET = """
if redis.replicate_commands then redis.replicate_commands() end
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(state[1]), tonumber(state[2])
if tokens == nil or updated == nil then
  tokens, updated = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
if tokens < cost then
  return string.format('%.6f', (cost - tokens) / rate)
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens - cost),
             'updated', string.format('%.6f', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
end
return '0'
"""


class RedisRateLimiter:
    """``take``/``peek`` on buckets in Redis under ``{prefix}ratelimit:``; the local
    ``fallback`` answers while Redis does not."""

    def __init__(
        self,
        url: str,
        prefix: str,
        budgets: BudgetSettings,
        *,
        breaker: CircuitBreaker | None = None,
        fallback: RateLimiter | None = None,
    ) -> None:
        self.prefix = f"{prefix}ratelimit:"
        self.budgets = budgets
        self.breaker = breaker or CircuitBreaker("redis")
        self.fallback = fallback or RateLimiter()
        seconds = budgets.online_ms / 1000
        self._timeout = seconds
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=seconds, socket_connect_timeout=seconds, retry=Retry(NoBackoff(), 0)
        )
        self._script = self._client.register_script(TOKEN_BUCKET)

    async def take(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float:
        return await self._bucket(key, rate, burst, cost, take=True)

    async def peek(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float:
        return await self._bucket(key, rate, burst, cost, take=False)

    async def _bucket(self, key: str, rate: float, burst: float, cost: float, take: bool) -> float:
        budget = current_budget() or RequestBudget(self.budgets)
        try:
            self.breaker.admit(budget)
        except StoreUnavailable:
            return self._local(key, rate, burst, cost, take)
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._script(
                    keys=[self.prefix + key], args=[rate, burst, cost, "1" if take else "0"]
                )
        except (redis.ConnectionError, redis.TimeoutError, TimeoutError, OSError) as error:
            self.breaker.failed(budget, error)
            return self._local(key, rate, burst, cost, take)
        except redis.RedisError as error:  # Redis answered, but refused the script
            self.breaker.succeeded()
            log.warning("shared rate limit refused", error=f"{type(error).__name__}: {error}")
            return self._local(key, rate, burst, cost, take)
        self.breaker.succeeded()
        return float(answer)

    def _local(self, key: str, rate: float, burst: float, cost: float, take: bool) -> float:
        FALLBACKS.inc()
        if take:
            return self.fallback.check(key, rate, burst, cost)
        return self.fallback.wait(key, rate, burst, cost)

    async def aclose(self) -> None:
        await self._client.aclose()


def limiter_for(online: OnlineStore, budgets: BudgetSettings, *, shared: bool = True) -> Limiter:
    """Shared buckets when the online store is Redis (several nodes share it) and ``shared``
    (``gateway.shared_rate_limits``), else the process's own (the embedded default has one
    node; a balancer in front may enforce the quotas already)."""
    if shared and isinstance(online, RedisOnlineStore):
        return RedisRateLimiter(online.client_url, online.prefix, budgets, breaker=online.breaker)
    return RateLimiter()
