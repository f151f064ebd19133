"""Per-key token buckets in this process. Hand-written: a bucket is a few lines, and the
libraries for it (slowapi, limits) bring storage backends and decorators this gateway does
not use.

These buckets live in each worker process, so with N workers (or N nodes) a key may burst up
to N times the configured rate. With Redis as the online store the gateway uses
``tastebud.gateway.shared_ratelimit`` instead, whose buckets live in Redis and hold across
every worker and node; it falls back to these when Redis does not answer in time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Limiter(Protocol):
    """What the API's dependencies ask of a rate limiter (``AppState.limiter``). Async, so a
    limiter over the network never blocks the event loop."""

    async def take(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float:
        """0 when allowed (the tokens are taken); else the seconds to wait before retrying."""
        ...

    async def peek(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float:
        """Like ``take`` without taking anything: 0 if ``cost`` tokens are there."""
        ...

    async def aclose(self) -> None: ...


class RateLimiter:
    """``check(key, rate, burst)`` takes one token, or says how long until one is there."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def check(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float:
        """0 when allowed (the tokens are taken); else the seconds to wait before retrying."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._buckets.clear()  # revoked and rotated keys must not pile up
                bucket = self._buckets[key] = _Bucket(tokens=burst, updated=now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / rate

    def wait(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float:
        """Like ``check`` without taking anything: 0 if ``cost`` tokens are there."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0.0
            tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        return 0.0 if tokens >= cost else (cost - tokens) / rate

    async def take(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float:
        return self.check(key, rate, burst, cost)

    async def peek(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float:
        return self.wait(key, rate, burst, cost)

    async def aclose(self) -> None:
        return None


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds; never 0, or clients retry at once."""
    return str(max(1, math.ceil(seconds)))
