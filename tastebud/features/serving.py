"""Serving features: ``FeatureService.get_online_features(entity_keys, feature_refs)``, what
``POST /v1/features`` and the ranking pipeline call.

Unknown features and entities are reported, never raised. A value the online store lacks
(expired, never materialized) or cannot give (Redis down) falls back to the offline store's
latest value within the view's TTL; every fallback is counted by view, reason and outcome,
and what is still missing is reported as missing. Serving never fails because a store did.
After an online failure the online store is skipped for ``ONLINE_RETRY_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tastebud.features.offline import OfflineStore
from tastebud.features.online import _ABSENT, Entry, FeatureOnlineStore, LruCache
from tastebud.features.views import ENTITY_KEYS, FeatureRegistry, FeatureView, canonical
from tastebud.observability import get_logger, metrics
from tastebud.stores import StoreError

log = get_logger("tastebud.features")

LATENCY = metrics.histogram(
    "feature",
    "latency",
    "ms",
    "Time of one get_online_features call, in milliseconds.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000),
)
FALLBACKS = metrics.counter(
    "feature",
    "fallback",
    "count",
    "Feature values the online store could not give, by reason and outcome.",
    labels=("view", "reason", "outcome"),
)
FRESHNESS = metrics.gauge(
    "feature",
    "freshness",
    "seconds",
    "Seconds since each view was last materialized to the online store.",
    labels=("view",),
)
FRESHNESS_REFRESH_SECONDS = 10.0
# After the online store fails, requests skip it for this long and go straight to the
# fallback: a Redis that hangs must not cost every request its socket timeout.
ONLINE_RETRY_SECONDS = 2.0


@dataclass
class FeatureResult:
    """``values[entity][entity_id][ref]``; ``missing`` lists (entity, id, ref) with no value."""

    values: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    missing: list[dict[str, str]] = field(default_factory=list)
    unknown_features: list[str] = field(default_factory=list)
    unknown_entities: list[str] = field(default_factory=list)
    fallbacks: int = 0


class FeatureService:
    def __init__(
        self,
        registry: FeatureRegistry,
        online: FeatureOnlineStore,
        offline: OfflineStore | None = None,
        *,
        fallback_cache_seconds: float = 30.0,
    ) -> None:
        self.registry = registry
        self.online = online
        self.offline = offline
        self._fallback_cache = LruCache(50_000, fallback_cache_seconds)
        self._freshness_checked = 0.0
        self._online_down_until = 0.0

    def get_online_features(
        self, entity_keys: Mapping[str, Sequence[str]], feature_refs: Sequence[str]
    ) -> FeatureResult:
        started = time.perf_counter()
        grouped, unknown = self.registry.resolve(feature_refs)
        result = FeatureResult(
            unknown_features=unknown,
            unknown_entities=sorted(set(entity_keys) - set(ENTITY_KEYS)),
        )
        for entity, ids in entity_keys.items():
            if entity in ENTITY_KEYS:
                result.values[entity] = {entity_id: {} for entity_id in ids}
        for name, features in grouped.items():
            view = self.registry.view(name)
            ids = list(dict.fromkeys(entity_keys.get(view.entity, ())))
            if ids:
                self._read_view(view, features, ids, result)
        LATENCY.observe((time.perf_counter() - started) * 1000)
        if time.monotonic() - self._freshness_checked > FRESHNESS_REFRESH_SECONDS:
            self.refresh_freshness()
        return result

    def _read_view(
        self, view: FeatureView, features: list[str], ids: list[str], result: FeatureResult
    ) -> None:
        reason = "missing"
        entries: list[Entry | None]
        if time.monotonic() < self._online_down_until:
            entries, reason = [None] * len(ids), "unavailable"
        else:
            try:
                entries = self.online.read(view, ids)
            except StoreError as error:
                log.warning("online_features_unavailable", view=view.name, error=str(error)[:200])
                self._online_down_until = time.monotonic() + ONLINE_RETRY_SECONDS
                entries, reason = [None] * len(ids), "unavailable"
        absent = [entity for entity, entry in zip(ids, entries, strict=True) if entry is None]
        recovered = self._fallback(view, absent, reason) if absent else {}
        result.fallbacks += len(absent)
        rows = result.values[view.entity]
        refs = [f"{view.name}:{feature}" for feature in features]
        for entity, entry in zip(ids, entries, strict=True):
            found = entry if entry is not None else recovered.get(entity)
            row = rows[entity]
            if found is None:
                row.update(dict.fromkeys(refs))
                result.missing.extend(
                    {"entity": view.entity, "entity_id": entity, "feature": ref} for ref in refs
                )
            else:
                row.update(zip(refs, map(found["v"].get, features), strict=True))

    def _fallback(self, view: FeatureView, ids: list[str], reason: str) -> dict[str, Entry]:
        """Latest offline values within the TTL; outcomes are cached briefly so a hot
        unknown id does not query the offline store on every request."""
        recovered: dict[str, Entry] = {}
        todo = []
        for entity in ids:
            cached = self._fallback_cache.get((view.name, entity))
            if cached is _ABSENT:
                todo.append(entity)
            elif cached is not None:
                recovered[entity] = cached
        if todo and self.offline is not None:
            since = datetime.now(UTC) - timedelta(seconds=view.ttl_seconds)
            try:
                table = self.offline.latest(view, entity_ids=todo, start=since)
            except StoreError as error:
                log.warning("offline_fallback_failed", view=view.name, error=str(error)[:200])
                table = None
            if table is not None:
                dtypes = {spec.name: spec.dtype for spec in view.features}
                for row in table.to_pylist():
                    entry = {
                        "t": row["event_timestamp"].isoformat(),
                        "v": {n: canonical(d, row[n]) for n, d in dtypes.items()},
                    }
                    recovered[row["entity_id"]] = entry
                for entity in todo:
                    self._fallback_cache.put((view.name, entity), recovered.get(entity))
        found = sum(1 for entity in ids if entity in recovered)
        if found:
            FALLBACKS.labels(view=view.name, reason=reason, outcome="found").inc(found)
        if len(ids) - found:
            FALLBACKS.labels(view=view.name, reason=reason, outcome="missing").inc(len(ids) - found)
        return recovered

    def refresh_freshness(self) -> dict[str, float | None]:
        """Set the freshness gauge of every view from the online store's metadata (one
        round trip; skipped while the online store is down)."""
        self._freshness_checked = time.monotonic()
        if time.monotonic() < self._online_down_until:
            return {}
        views = list(self.registry.views.values())
        try:
            metas = self.online.get_metas(views)
        except StoreError:
            self._online_down_until = time.monotonic() + ONLINE_RETRY_SECONDS
            return {}
        ages: dict[str, float | None] = {}
        now = datetime.now(UTC)
        for view, meta in zip(views, metas, strict=True):
            if meta and meta.get("materialized_at"):
                age = (now - datetime.fromisoformat(meta["materialized_at"])).total_seconds()
                FRESHNESS.labels(view=view.name).set(age)
                ages[view.name] = age
            else:
                ages[view.name] = None
        return ages
