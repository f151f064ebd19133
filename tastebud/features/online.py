"""The online feature store: the latest values of each view per entity, over any
``OnlineStore`` (``memory://``, the embedded SQLite file, ``redis://``), read in one batched
``get_many`` (MGET on Redis) per view.

Layout: ``feat:{view}:{version}:{entity}`` holds ``{"t": event time, "v": {feature: value}}``
as JSON, expiring ``ttl_seconds`` after its event time. ``feat:gen:{view}:{version}`` changes
on every materialization of the view.

A small in-process LRU sits in front of shared backends. Its entries remember the view's
generation; a process re-reads the generations at most every ``generation_check_seconds``,
so a materialization in another process (the job) invalidates every server's cache within
that bound, and at once in the process that wrote.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from tastebud.features.views import FeatureView, canonical
from tastebud.observability import metrics
from tastebud.stores import OnlineStore
from tastebud.stores.online import MemoryOnlineStore

CACHE_HITS = metrics.counter(
    "feature", "cache_hits", "count", "Online feature lookups answered by the in-process LRU."
)
CACHE_MISSES = metrics.counter(
    "feature", "cache_misses", "count", "Online feature lookups that went to the online store."
)
CACHE_HIT_RATIO = metrics.gauge(
    "feature", "cache_hit", "ratio", "Share of online feature lookups the LRU answered."
)
WRITE_CHUNK = 5_000
Entry = dict[str, Any]  # {"t": iso event time, "v": {feature: value}}
_ABSENT = object()


class LruCache:
    """A thread-safe LRU with a time-to-live per entry."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        """The value, or ``_ABSENT`` when not cached (None is a cacheable value)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return _ABSENT
            if entry[0] <= now:
                del self._entries[key]
                return _ABSENT
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Any, value: Any) -> None:
        expires = time.monotonic() + self.ttl_seconds
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class FeatureOnlineStore:
    """Feature values over an OnlineStore; see the module docstring for layout and caching."""

    def __init__(
        self,
        kv: OnlineStore,
        *,
        cache_entries: int = 100_000,
        cache_seconds: float = 30.0,
        generation_check_seconds: float = 1.0,
    ) -> None:
        self.kv = kv
        use_cache = cache_entries > 0 and not isinstance(kv, MemoryOnlineStore)
        self.cache = LruCache(cache_entries, cache_seconds) if use_cache else None
        self.generation_check_seconds = generation_check_seconds
        self._generations: dict[str, tuple[float, bytes | None]] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(view: FeatureView, entity_id: str) -> str:
        return f"feat:{view.name}:{view.version}:{entity_id}"

    @staticmethod
    def generation_key(view: FeatureView) -> str:
        return f"feat:gen:{view.name}:{view.version}"

    @staticmethod
    def meta_key(view: FeatureView) -> str:
        return f"feat:meta:{view.name}:{view.version}"

    # -- writing -----------------------------------------------------------------------

    def write(self, view: FeatureView, table: pa.Table, now: datetime | None = None) -> int:
        """Store rows (conformed to the view's schema); each expires ``ttl_seconds`` after
        its event time, so an entity the view stops producing fades out by itself. Rows
        already past their TTL are skipped. Returns how many were written."""
        now = now or datetime.now(UTC)
        dtypes = {spec.name: spec.dtype for spec in view.features}
        by_expiry: dict[float, dict[str, bytes]] = {}
        for row in table.to_pylist():
            stamp: datetime = row["event_timestamp"]
            remaining = view.ttl_seconds - (now - stamp).total_seconds()
            if remaining <= 0:
                continue
            document = {
                "t": stamp.isoformat(),
                "v": {name: canonical(dtype, row[name]) for name, dtype in dtypes.items()},
            }
            encoded = json.dumps(document, separators=(",", ":")).encode()
            by_expiry.setdefault(round(remaining, 0) or 1.0, {})[
                self.key(view, row["entity_id"])
            ] = encoded
        written = 0
        for ttl, values in by_expiry.items():
            items = list(values.items())
            for offset in range(0, len(items), WRITE_CHUNK):
                chunk = dict(items[offset : offset + WRITE_CHUNK])
                self.kv.set_many(chunk, ttl_seconds=ttl)
                written += len(chunk)
        return written

    def invalidate(self, view: FeatureView) -> None:
        """Tell every process its cached values of ``view`` are stale."""
        generation = uuid.uuid4().hex.encode()
        self.kv.set(self.generation_key(view), generation)
        self._generations[view.name] = (time.monotonic(), generation)

    def delete(self, view: FeatureView, entity_ids: Sequence[str]) -> int:
        removed = self.kv.delete_many([self.key(view, entity) for entity in entity_ids])
        self.invalidate(view)
        return removed

    def set_meta(self, view: FeatureView, document: dict[str, Any]) -> None:
        self.kv.set(self.meta_key(view), json.dumps(document, default=str).encode())

    def get_meta(self, view: FeatureView) -> dict[str, Any] | None:
        raw = self.kv.get(self.meta_key(view))
        return None if raw is None else json.loads(raw)

    def get_metas(self, views: Sequence[FeatureView]) -> list[dict[str, Any] | None]:
        """The metadata of several views in one round trip."""
        raws = self.kv.get_many([self.meta_key(view) for view in views])
        return [None if raw is None else json.loads(raw) for raw in raws]

    # -- reading -----------------------------------------------------------------------

    def _generation(self, view: FeatureView) -> bytes | None:
        """The view's generation, re-read from the store at most every check interval."""
        known = self._generations.get(view.name)
        now = time.monotonic()
        if known is not None and now - known[0] < self.generation_check_seconds:
            return known[1]
        current = self.kv.get(self.generation_key(view))
        self._generations[view.name] = (now, current)
        return current

    def read(
        self, view: FeatureView, entity_ids: Sequence[str], *, use_cache: bool = True
    ) -> list[Entry | None]:
        """Entries aligned with ``entity_ids`` (None where the store has none). Raises
        StoreUnavailable when the backend is down; the caller decides how to fall back."""
        cache = self.cache if use_cache else None
        if cache is None:
            return [
                _decode(raw)
                for raw in self.kv.get_many([self.key(view, entity) for entity in entity_ids])
            ]
        generation = self._generation(view)
        found: list[Entry | None] = [None] * len(entity_ids)
        wanted: list[int] = []
        for index, entity in enumerate(entity_ids):
            cached = cache.get((view.name, view.version, entity))
            if cached is not _ABSENT and cached[0] == generation:
                found[index] = cached[1]
            else:
                wanted.append(index)
        hits = len(entity_ids) - len(wanted)
        if wanted:
            raws = self.kv.get_many([self.key(view, entity_ids[i]) for i in wanted])
            for index, raw in zip(wanted, raws, strict=True):
                entry = _decode(raw)
                found[index] = entry
                cache.put((view.name, view.version, entity_ids[index]), (generation, entry))
        self._count(hits, len(wanted))
        return found

    def _count(self, hits: int, misses: int) -> None:
        self.hits += hits
        self.misses += misses
        if hits:
            CACHE_HITS.inc(hits)
        if misses:
            CACHE_MISSES.inc(misses)
        total = self.hits + self.misses
        if total:
            CACHE_HIT_RATIO.set(self.hits / total)

    @property
    def hit_ratio(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def close(self) -> None:
        self.kv.close()


def _decode(raw: bytes | None) -> Entry | None:
    return None if raw is None else json.loads(raw)
