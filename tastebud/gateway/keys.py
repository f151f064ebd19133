"""API-key checks for the HTTP layer: a short per-worker cache over the key store, and the
first admin key of an embedded install."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from tastebud.config import Settings
from tastebud.observability import metrics
from tastebud.stores import Database, StoreUnavailable
from tastebud.stores.keys import ApiKey, ApiKeyStore, hash_key

FROM_OUTAGE_CACHE = metrics.counter(
    "gateway",
    "keys_from_outage_cache",
    "total",
    "Requests authenticated from the key cache because the key store was unavailable.",
)


class KeyAuthenticator:
    """Looks keys up by hash, trusting a found key for ``cache_seconds`` (so a revocation takes
    effect within that time on every worker). An unknown key is remembered for
    ``miss_seconds``: its repeats cost no store lookup (a key created in that window works
    once it passes). The HTTP layer also rate-limits failures per client address.

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
        miss_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.outage_seconds = outage_seconds
        self.miss_seconds = miss_seconds
        self._clock = clock
        # hash -> (key, trusted until, found valid at)
        self._cache: dict[str, tuple[ApiKey, float, float]] = {}
        # hash -> unknown until
        self._misses: dict[str, float] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def cached(self, secret: str) -> ApiKey | None:
        """The key if a recent lookup found it: no store access (the event loop may call it)."""
        with self._lock:
            cached = self._cache.get(hash_key(secret))
        return cached[0] if cached is not None and cached[1] > self._clock() else None

    def known_unknown(self, secret: str) -> bool:
        """Whether a recent lookup found no such key (no store access)."""
        with self._lock:
            until = self._misses.get(hash_key(secret))
        return until is not None and until > self._clock()

    def authenticate(self, secret: str) -> ApiKey | None:
        found = self.cached(secret)
        if found is not None:
            return found
        digest = hash_key(secret)
        now = self._clock()
        with self._lock:
            until = self._misses.get(digest)
        if until is not None and until > now:
            return None
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
                if self.miss_seconds > 0:
                    if len(self._misses) >= self._max_entries:
                        self._misses.clear()  # random keys from a scan must not pile up
                    self._misses[digest] = now + self.miss_seconds
            elif self.cache_seconds > 0 or self.outage_seconds > 0:
                self._misses.pop(digest, None)
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


ADMIN_KEY_FILE = "admin-key"


def write_admin_key(secret: str, home: Path) -> Path:
    """Write the bootstrap admin key where only its owner can read it (mode 0600, created
    that way: never readable by others, even for a moment) and return the path. For a server
    started without a terminal, whose output ends up in logs: the path is printed, not the
    key."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / ADMIN_KEY_FILE
    path.unlink(missing_ok=True)  # a stale file of a wiped install; O_EXCL below
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    return path
