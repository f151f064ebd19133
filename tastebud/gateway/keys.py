"""API-key checks for the HTTP layer: a short per-worker cache over the key store, and the
first admin key of an embedded install."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from tastebud.config import Settings
from tastebud.observability import metrics
from tastebud.stores import Database, StoreUnavailable
from tastebud.stores.gateway import ApiKey, ApiKeyStore, hash_key

FROM_OUTAGE_CACHE = metrics.counter(
    "gateway",
    "keys_from_outage_cache",
    "total",
    "Requests authenticated from the key cache because the key store was unavailable.",
)


class KeyAuthenticator:
    """Looks keys up by hash, trusting a found key for ``cache_seconds`` (so a revocation takes
    effect within that time on every worker). Unknown keys are not cached: a key created a
    moment ago works at once.

    While the key store is unavailable, a key found valid within the last ``outage_seconds``
    still authenticates (counted in ``tastebud_gateway_keys_from_outage_cache_total``):
    clients already seen keep being served while the database is down, for a bounded time.
    A key revoked during the outage works until the store answers again."""

    def __init__(
        self,
        store: ApiKeyStore,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
        outage_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.outage_seconds = outage_seconds
        self._clock = clock
        # hash -> (key, trusted until, found valid at)
        self._cache: dict[str, tuple[ApiKey, float, float]] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def cached(self, secret: str) -> ApiKey | None:
        """The key if a recent lookup found it: no store access (the event loop may call it)."""
        with self._lock:
            cached = self._cache.get(hash_key(secret))
        return cached[0] if cached is not None and cached[1] > self._clock() else None

    def authenticate(self, secret: str) -> ApiKey | None:
        found = self.cached(secret)
        if found is not None:
            return found
        digest = hash_key(secret)
        now = self._clock()
        try:
            key = self.store.authenticate(secret)
        except StoreUnavailable:
            with self._lock:
                cached = self._cache.get(digest)
            if cached is not None and now - cached[2] <= self.outage_seconds:
                FROM_OUTAGE_CACHE.inc()
                return cached[0]
            raise
        with self._lock:
            if key is None:
                self._cache.pop(digest, None)
            elif self.cache_seconds > 0 or self.outage_seconds > 0:
                if len(self._cache) >= self._max_entries:
                    self._cache.clear()
                self._cache[digest] = (key, now + self.cache_seconds, now)
        return key


def bootstrap_admin_key(settings: Settings, database: Database) -> str | None:
    """On the embedded default, with auth on and no active key yet, create an admin key and
    return its secret (the caller prints it once). Atomic: of two servers starting at once,
    one creates it."""
    if not settings.gateway.auth or not settings.gateway.bootstrap_admin_key:
        return None
    if urlsplit(database.url).scheme != "embedded":
        return None
    created = database.gateway.keys.create(["admin"], "first admin key", only_if_empty=True)
    return None if created is None else created[1]
