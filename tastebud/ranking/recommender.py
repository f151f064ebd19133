"""The serving side of ranking, one per worker process: answers requests from the current
``Snapshot``, which ``tastebud.ranking.lifecycle`` keeps current off the request path.

A request is, in order: a lookup that may answer without ranking (``tastebud.ranking.lookup``:
the user's precomputed list, the shared list of unknown users); the context read from the
stores (``tastebud.ranking.context``); the pipeline of the request's ranking settings
(``tastebud.ranking.pipeline``). Before it, the request's experiment variant may change the
ranking settings and the model (``tastebud.ranking.experiment_serving``), and after it the
list is logged as an exposure. Every per-request read of a store may fail; the request then
ranks with what it has and says ``degraded`` with the reasons (``catalog`` while a catalog
refresh fails).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tastebud.config import Settings
from tastebud.experiments.exposure_log import ExposureLog
from tastebud.features.serving import FeatureService
from tastebud.monitoring.serving import observe_served
from tastebud.observability import get_logger
from tastebud.ranking.context import ContextReader
from tastebud.ranking.experiment_serving import BookSource, ExperimentServing
from tastebud.ranking.lifecycle import ModelLifecycle
from tastebud.ranking.lookup import Lookup, StoredLists
from tastebud.ranking.metrics import (  # noqa: F401  (MODEL_LOADS: re-exported)
    BLEND_RATIO,
    DEGRADED,
    DIVERSITY,
    LATENCY,
    MODEL_LOADS,
    RECENCY,
    SEGMENTS,
    stage_latency,
)
from tastebud.ranking.pipeline import Pipeline, pipeline_for
from tastebud.ranking.precomputed import PrecomputedList
from tastebud.ranking.rerank import minmax
from tastebud.ranking.shadow import ShadowRanking
from tastebud.ranking.snapshot import ServingModel, Snapshot
from tastebud.ranking.types import RankedList, RankRequest, Served
from tastebud.ranking.variants import VariantModels
from tastebud.ranking_config import RankingSettings
from tastebud.registry.registry import ModelRegistry
from tastebud.stores import Stores
from tastebud.stores.activity import RecentActivity

log = get_logger("tastebud.ranking")

__all__ = ["Lookup", "RecommendationService", "Served", "UnknownCategory", "UnknownItem"]


class UnknownItem(LookupError):
    pass


class UnknownCategory(LookupError):
    pass


class RecommendationService:
    def __init__(
        self,
        settings: Settings,
        stores: Stores,
        *,
        features: Callable[[], FeatureService | None] | None = None,
        registry: ModelRegistry | None = None,
        embeddings: ModelRegistry | None = None,
        experiments: BookSource | None = None,
        exposures: ExposureLog | None = None,
    ) -> None:
        """``experiments``: where the current experiment book comes from (default: none
        run); ``exposures``: the log every served list is appended to (default: none)."""
        self.settings = settings
        self.stores = stores
        self.serving = settings.serving
        self.activity = RecentActivity(
            stores.online,
            settings.events.types,
            keep=settings.serving.recent_activity,
            ttl_seconds=settings.serving.recent_activity_ttl_days * 86_400,
        )
        self.lifecycle = ModelLifecycle(settings, stores, registry=registry, embeddings=embeddings)
        self.contexts = ContextReader(stores.online, self.activity, features)
        self.stored = StoredLists(settings, stores.online, self.activity)
        self.pipeline = Pipeline.from_settings(settings.ranking)  # overrides: pipeline_for
        self.variants = VariantModels(self.lifecycle)
        self.experiments = ExperimentServing(
            settings.ranking,
            self.variants,
            source=experiments,
            exposures=exposures,
            enabled=settings.experiments.enabled,
        )
        # The shadow model (tastebud.ranking.shadow): ranks a sample of the lists production
        # serves, off the request path; ``offer`` below is its only hook.
        self.shadow = ShadowRanking(settings, self.lifecycle, self.compute)

    # -- lifecycle (tastebud.ranking.lifecycle) ------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot: a request reads it once and keeps that one."""
        return self.lifecycle.snapshot

    @property
    def catalog_error(self) -> str | None:
        return self.lifecycle.catalog_error

    @property
    def model_problem(self) -> str | None:
        """Why the alias's version is not what serves (None when it is): /readyz says it."""
        return self.lifecycle.model_problem

    @property
    def registry(self) -> ModelRegistry:
        return self.lifecycle.registry

    def start(self, *, watch: bool = True) -> None:
        """Load what there is now (so the first request has the model), then keep watching."""
        self.lifecycle.start(watch=watch)
        if watch:
            self.shadow.start()  # the shadow model loads off the request path (shadow.py)

    def stop(self) -> None:
        self.shadow.stop()
        self.variants.stop()
        self.lifecycle.stop()

    def refresh(self) -> bool:
        """Look for a new model, embeddings or catalog now; True when the snapshot changed."""
        return self.lifecycle.refresh()

    def load_model(self, version: str) -> ServingModel:
        """Fetch, verify, load and smoke-test one version (raises on any failure)."""
        return self.lifecycle.load_model(version)

    # -- requests ------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """The configured ranking settings' fingerprint (what precomputed lists must match)."""
        return self.stored.fingerprint

    @property
    def inline_lookups(self) -> bool:
        """Whether the routes look precomputed lists up on the event loop: only when the
        online store's reads are local (SQLite, memory). A worker thread would cost more in
        GIL hand-offs than the read; a network store stays off the loop."""
        return self.serving.precomputed and self.stores.online.local_reads

    def lookup(
        self,
        user_id: str | None,
        request: RankRequest,
        *,
        session_items: Sequence[str] = (),
        ranking: RankingSettings | None = None,
        snapshot: Snapshot | None = None,
    ) -> Lookup:
        """The user's precomputed list when it still holds (``stored``), or the shared list
        of users nobody knows yet (``served``); else what the look read on the way, for
        ``recommend`` to rank with. ``snapshot``: a variant's model (nothing is stored)."""
        if (
            user_id is None
            or snapshot is not None
            or not self.stored.applies(request, session_items, ranking)
        ):
            return Lookup()
        started = time.perf_counter()
        snapshot = self.snapshot
        stored, entries, outcome = self.stored.precomputed(
            snapshot, user_id, self.lifecycle.catalog_error
        )
        if stored is not None:
            LATENCY.labels(stage="precomputed").observe((time.perf_counter() - started) * 1000)
            self._observe(stored, [])
            self.shadow.offer(user_id, request, session_items, ranking, stored)  # shadow
            return Lookup(stored=stored, entries=entries)
        if outcome == "missing":
            shared, entries = self.stored.anonymous(snapshot, user_id, request)
            if shared is not None:
                self._observe(shared.ranked, [])
                self.shadow.offer(user_id, request, session_items, ranking, shared.ranked)
                return Lookup(served=shared, entries=entries)
        return Lookup(entries=entries)

    def recommend(
        self,
        user_id: str | None,
        request: RankRequest,
        *,
        session_items: Sequence[str] = (),
        ranking: RankingSettings | None = None,
        looked_up: Lookup | None = None,
        snapshot: Snapshot | None = None,
    ) -> Served:
        """A ranked list for a user (or an anonymous session's items): the user's precomputed
        list while it holds, else ranked now. Never raises for a store that is down: the
        list is then ``degraded``. ``looked_up``: the caller already ran ``lookup``;
        ``snapshot``: rank with this one (a variant's model), not the current one."""
        found = looked_up or self.lookup(
            user_id, request, session_items=session_items, ranking=ranking, snapshot=snapshot
        )
        if found.stored is not None:
            try:
                return Served(found.stored.ranked(explain=request.explain), precomputed=True)
            except (ValueError, TypeError, KeyError) as error:  # damaged items: rank instead
                log.warning("precomputed_unreadable", error=f"{type(error).__name__}")
        if found.served is not None:
            return found.served
        started = time.perf_counter()
        variant = snapshot is not None  # an experiment variant's model: not shadowed
        snapshot = snapshot or self.snapshot
        served, _ = self.compute(
            user_id,
            request,
            session_items=session_items,
            ranking=ranking,
            entries=found.entries,
            snapshot=snapshot,
        )
        ranked = served.ranked
        ranked.timings_ms["total"] = (time.perf_counter() - started) * 1000
        for stage, ms in ranked.timings_ms.items():
            stage_latency(stage).observe(ms)
        self._observe(ranked, served.degraded)
        if not variant:  # shadow (tastebud.ranking.shadow): never waits
            self.shadow.offer(user_id, request, session_items, ranking, ranked)
        if (
            found.entries == []  # looked up, and the user has no recent activity
            and ranked.segment == "unknown"
            and not served.degraded
            and not served.used_affinity
        ):
            self.stored.remember_anonymous(snapshot, request, served)
        return served

    def compute(
        self,
        user_id: str | None,
        request: RankRequest,
        *,
        session_items: Sequence[str] = (),
        ranking: RankingSettings | None = None,
        entries: list[bytes] | None = None,
        snapshot: Snapshot | None = None,
    ) -> tuple[Served, str | None]:
        """Rank now (no precomputed list, no metrics); also returns the activity marker the
        list was ranked under (what the ``recommendations`` job stores beside it).
        ``entries`` is the user's recent-activity list when the caller already read it;
        ``snapshot`` the one to rank with (default: the current one)."""
        started = time.perf_counter()
        snapshot = snapshot or self.snapshot
        settings = ranking or self.settings.ranking
        self._check_category(snapshot, request.category)
        context, marker = self.contexts.read(
            snapshot,
            user_id,
            session_items,
            request.category,
            settings,
            request.k,
            entries=entries,
            catalog_error=self.lifecycle.catalog_error,
        )
        context_ms = (time.perf_counter() - started) * 1000
        pipeline = self.pipeline if ranking is None else pipeline_for(settings)
        ranked = pipeline.run(snapshot, context, request)
        ranked.timings_ms = {"context": context_ms, **ranked.timings_ms}
        ranked.timings_ms["total"] = (time.perf_counter() - started) * 1000
        used_affinity = bool(context.category_affinity)
        return Served(ranked, context.degraded, used_affinity=used_affinity), marker

    def _observe(self, ranked: RankedList | PrecomputedList, degraded: list[str]) -> None:
        SEGMENTS.labels(segment=ranked.segment).inc()
        observe_served(ranked)  # per model version (tastebud.monitoring.serving)
        BLEND_RATIO.set(ranked.blend_ratio)
        DIVERSITY.set(ranked.diversity)
        RECENCY.set(ranked.recency_weight)
        for reason in degraded:
            DEGRADED.labels(reason=reason).inc()

    def _check_category(self, snapshot: Snapshot, category: str | None) -> None:
        known = category is None or not snapshot.catalog_loaded
        if not known and not snapshot.category_known(category):  # type: ignore[arg-type]
            raise UnknownCategory(category)

    def describe_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add ``title`` and ``creator`` to list entries (dicts with an ``item_id``), from
        the catalog as the current snapshot holds it; returns the same list."""
        snapshot = self.snapshot
        positions = snapshot.positions([str(entry["item_id"]) for entry in items]).tolist()
        for entry, (title, creator) in zip(
            items, snapshot.catalog.describe(positions), strict=True
        ):
            entry["title"] = title
            entry["creator"] = creator
        return items

    def similar(self, item_id: str, k: int) -> tuple[list[dict[str, Any]], str | None]:
        """Items like ``item_id``: CF neighbours blended with content neighbours (content
        alone for an item the model has never seen). Raises UnknownItem."""
        snapshot = self.snapshot
        position = snapshot.items.index_of(item_id)
        if position < 0:
            raise UnknownItem(item_id)
        depth = k * 3 + 10
        scores: dict[int, list[float]] = {}
        alpha = self.settings.ranking.blend.alpha
        serving = snapshot.model
        has_content = snapshot.content is not None and snapshot.content_row[position] >= 0
        in_model = serving is not None and snapshot.model_column[position] >= 0
        parts: list[tuple[str, float, np.ndarray, np.ndarray]] = []
        if in_model:
            assert serving is not None
            ids, values = serving.model.similar_items([item_id], depth)
            parts.append(("cf", alpha if has_content else 1.0, ids[0], values[0]))
        if has_content:
            assert snapshot.content is not None
            ids, values = snapshot.content.similar([item_id], depth)
            parts.append(("content", 1.0 - alpha if in_model else 1.0, ids[0], values[0]))
        sources: dict[int, set[str]] = {}
        for name, weight, ids, values in parts:
            known = np.array([i is not None for i in ids], dtype=bool)
            positions = snapshot.positions([str(i) for i in ids[known]])
            normalised = minmax(values[known])
            for p, value in zip(positions.tolist(), normalised.tolist(), strict=True):
                if p < 0:
                    continue
                scores.setdefault(p, [0.0])[0] += weight * value
                sources.setdefault(p, set()).add(name)
        ranked = sorted(
            (p for p in scores if snapshot.catalog.active[p]), key=lambda p: -scores[p][0]
        )
        items = [
            {
                "item_id": str(snapshot.item_ids[p]),
                "score": round(scores[p][0], 6),
                "sources": sorted(sources[p], key=("cf", "content").index),
            }
            for p in ranked[:k]
        ]
        return items, snapshot.model_version

    def popular(self, category: str | None, k: int) -> tuple[list[dict[str, Any]], list[str]]:
        """The published popular list (the in-process model's popularity when none is
        published or the online store is down), filled to ``k`` active items from the
        model's popularity and the catalog (``Snapshot.filled_popular``). Raises
        UnknownCategory."""
        snapshot = self.snapshot
        self._check_category(snapshot, category)
        degraded: list[str] = []
        published = self.contexts.published_ids("popularity", category, degraded)
        ids = snapshot.filled_popular(published, category, k)
        positions = snapshot.positions(ids)
        active = [
            item_id
            for item_id, p in zip(ids, positions.tolist(), strict=True)
            if p < 0 or snapshot.catalog.active[p]
        ]
        items = [{"item_id": item_id, "rank": i + 1} for i, item_id in enumerate(active[:k])]
        return items, degraded
