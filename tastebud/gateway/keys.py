"""API-key checks for the HTTP layer: a short per-worker cache over the key store, and the
first admin key of an embedded install."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from tastebud.config import Settings
from tastebud.stores import Database
from tastebud.stores.gateway import ApiKey, ApiKeyStore, hash_key


class KeyAuthenticator:
    """Looks keys up by hash, trusting a found key for ``cache_seconds`` (so a revocation takes
    effect within that time on every worker). Unknown keys are not cached: a key created a
    moment ago works at once."""

    def __init__(
        self,
        store: ApiKeyStore,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[ApiKey, float]] = {}
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
        key = self.store.authenticate(secret)
        if key is not None and self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= self._max_entries:
                    self._cache.clear()
                self._cache[digest] = (key, now + self.cache_seconds)
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
