"""The serving side of ranking, one per worker process: keeps a ``Snapshot`` current and
answers requests from it.

- **Model lifecycle.** A watcher thread checks the registry alias (``serving.model_alias``,
  default ``production``) and the production embeddings every ``serving.poll_seconds``. A
  new version is fetched, checksum-verified, loaded and smoke-tested off the request path,
  then swapped in with one assignment; a version that fails any step is refused (logged,
  counted, retried after ``serving.retry_failed_seconds``) and the current one keeps serving.
- **Degraded mode.** Every per-request read of a store (recent activity, published lists,
  features) may fail; the request then ranks with what it has (the in-process model and its
  popularity list) and says ``degraded`` with the reasons. A failed catalog refresh keeps
  the last catalog and reports ``catalog`` until a refresh succeeds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tastebud.config import Settings
from tastebud.content.artifact import ALIAS as EMBEDDINGS_ALIAS
from tastebud.content.artifact import load_artifact
from tastebud.content.service import registry_for
from tastebud.content.similarity import ContentSimilarity
from tastebud.features.service import FeatureService
from tastebud.models.base import Recommender
from tastebud.observability import get_logger, metrics
from tastebud.ranking.activity import RecentActivity, activity_marker
from tastebud.ranking.config import RankingSettings
from tastebud.ranking.pipeline import RankedList, RankRequest, UserContext, rank
from tastebud.ranking.precomputed import PrecomputedList, precomputed_key, settings_fingerprint
from tastebud.ranking.rerank import minmax
from tastebud.ranking.retrieval import load_index
from tastebud.ranking.snapshot import ServingModel, Snapshot
from tastebud.registry.registry import ModelRegistry, open_registry
from tastebud.schemas import Item
from tastebud.stores import Stores
from tastebud.stores.published import PublishedOutputs

log = get_logger("tastebud.ranking")

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000)
LATENCY = metrics.histogram(
    "reco",
    "hybrid_latency",
    "ms",
    "Time spent per ranking stage (context, history, candidates, filter, score, rerank, "
    "explain, total), in milliseconds.",
    labels=("stage",),
    buckets=STAGE_BUCKETS,
)
BLEND_RATIO = metrics.gauge(
    "reco",
    "hybrid_blend",
    "ratio",
    "CF share of the blend weights in the last list served (0 for cold users).",
)
DIVERSITY = metrics.gauge(
    "reco",
    "hybrid_diversity",
    "score",
    "Intra-list diversity (mean 1 - cosine) of the last list served.",
)
RECENCY = metrics.gauge(
    "reco",
    "hybrid_recency_weight",
    "avg",
    "Mean recency boost over the last list served.",
)
SEGMENTS = metrics.counter(
    "reco",
    "cold_start",
    "requests",
    "Recommendation requests by user segment (warm, cold: few interactions, unknown).",
    labels=("segment",),
)
DEGRADED = metrics.counter(
    "reco",
    "degraded",
    "requests",
    "Requests answered without a part of their context, by reason.",
    labels=("reason",),
)
MODEL_LOADS = metrics.counter(
    "reco",
    "model_loads",
    "total",
    "Model and embedding versions the server tried to load, by kind and outcome.",
    labels=("kind", "outcome"),
)
PRECOMPUTED = metrics.counter(
    "reco",
    "precomputed",
    "requests",
    "Default-shape requests by what became of the user's precomputed list: hit, missing, "
    "stale_activity, stale_model, stale_settings, expired, inactive_item, degraded, "
    "unreadable.",
    labels=("outcome",),
)
PUBLISHED_CACHE_SECONDS = 5.0
PUBLISHED_RETRY_SECONDS = 1.0
ANONYMOUS_CACHE_SECONDS = PUBLISHED_CACHE_SECONDS
AFFINITY_FEATURES = (
    "user_category_affinity:top_categories",
    "user_category_affinity:top_category_shares",
)


class UnknownItem(LookupError):
    pass


class UnknownCategory(LookupError):
    pass


@dataclass
class Served:
    """A ranked list and how it was made."""

    ranked: RankedList
    degraded: list[str] = field(default_factory=list)
    precomputed: bool = False  # served from the `recommendations` job's stored list
    used_affinity: bool = False  # the cold-start prior used the user's category affinity


@dataclass(frozen=True)
class Lookup:
    """A lookup before ranking: the user's stored list when it holds (``stored``, its items
    still encoded), or the shared list of unknown users (``served``); and the user's
    recent-activity entries when they were read on the way (ranking reuses them)."""

    stored: PrecomputedList | None = None
    served: Served | None = None
    entries: list[bytes] | None = None


@dataclass
class _Published:
    ids: list[str] | None
    fetched: float
    failed: bool = False


class RecommendationService:
    def __init__(
        self,
        settings: Settings,
        stores: Stores,
        *,
        features: Callable[[], FeatureService | None] | None = None,
        registry: ModelRegistry | None = None,
        embeddings: ModelRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.serving = settings.serving
        self.registry = registry or open_registry(settings, stores.artifacts)
        self.embeddings = embeddings or registry_for(settings, stores)
        self.activity = RecentActivity(
            stores.online,
            settings.events.types,
            keep=settings.serving.recent_activity,
            ttl_seconds=settings.serving.recent_activity_ttl_days * 86_400,
        )
        self._features = features
        self.snapshot = Snapshot.build(None, None, [], catalog_loaded=False)
        self._model: ServingModel | None = None
        self._content: tuple[str, ContentSimilarity] | None = None
        self._catalog: dict[str, Item] = {}  # item_id -> Item, ordered by item_id
        self._catalog_at = 0.0
        self._catalog_watermark: float | None = None  # None: not read yet
        self.catalog_error: str | None = None
        self._failed: dict[tuple[str, str], float] = {}
        self._published: dict[tuple[str, str | None], _Published] = {}
        self._fingerprint: str | None = None
        # (k, explain) -> (when, snapshot, list) for users unknown to the model, no activity
        self._anonymous: dict[tuple[int, bool], tuple[float, Snapshot, Served]] = {}
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, *, watch: bool = True) -> None:
        """Load what there is now (so the first request has the model), then keep watching."""
        self.refresh()
        if watch and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="tastebud-model-watch")
            self._thread.daemon = True
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.serving.poll_seconds):
            try:
                self.refresh()
            except Exception as error:  # the watcher must outlive any one failure
                log.error("serving_refresh_failed", error=f"{type(error).__name__}: {error}")

    def refresh(self) -> bool:
        """Look for a new model, embeddings or catalog; rebuild the snapshot when one
        changed. Returns whether the snapshot was swapped."""
        with self._refresh_lock:
            changed = self._refresh_model()
            changed = self._refresh_content() or changed
            changed = self._refresh_catalog() or changed
            if changed or (not self.snapshot.catalog_loaded and self._catalog_at):
                content = self._content
                self.snapshot = Snapshot.build(
                    self._model,
                    content[1] if content else None,
                    list(self._catalog.values()),
                    content_version=content[0] if content else None,
                    catalog_loaded=self._catalog_at > 0,
                )
                log.info(
                    "serving_snapshot",
                    model_version=self.snapshot.model_version,
                    embeddings=self.snapshot.content_version,
                    items=len(self.snapshot.items),
                )
                return True
            return False

    def _should_try(self, kind: str, version: str) -> bool:
        failed = self._failed.get((kind, version))
        return failed is None or time.monotonic() - failed > self.serving.retry_failed_seconds

    def _refresh_model(self) -> bool:
        try:
            version = self.registry.aliases().get(self.serving.model_alias)
        except Exception as error:
            log.warning("model_alias_unreadable", error=f"{type(error).__name__}: {error}")
            return False
        current = self._model.version if self._model else None
        if version is None or version == current or not self._should_try("model", version):
            return False
        try:
            self._model = self.load_model(version)
        except Exception as error:
            self._failed[("model", version)] = time.monotonic()
            MODEL_LOADS.labels(kind="model", outcome="refused").inc()
            log.error(
                "model_refused",
                version=version,
                serving=current,
                error=f"{type(error).__name__}: {error}",
            )
            return False
        MODEL_LOADS.labels(kind="model", outcome="loaded").inc()
        log.info("model_swapped", version=version, previous=current)
        return True

    def load_model(self, version: str) -> ServingModel:
        """Fetch, verify, load and smoke-test one version (raises on any failure)."""
        manifest = self.registry.get(version)
        model = self.registry.load(version, Recommender.load, smoke=_smoke)
        threshold = self.settings.ranking.candidates.exact_threshold
        index = None
        if len(model.items_) > threshold:
            try:
                index = load_index(
                    self.stores.artifacts,
                    version,
                    item_count=len(model.items_),
                    dim=getattr(model, "item_factors_", np.zeros((0, 0))).shape[1],
                    ef_search=self.settings.ranking.candidates.ann_ef_search,
                )
            except Exception as error:  # a broken index must not stop the model: exact
                log.error("ann_index_refused", version=version, error=str(error))
        end = manifest.time_range.end if manifest.time_range else None
        return ServingModel.prepare(
            model,
            version,
            exact_threshold=threshold,
            index=index,
            trained_until=end.timestamp() if end else None,
        )

    def _refresh_content(self) -> bool:
        try:
            version = self.embeddings.aliases().get(EMBEDDINGS_ALIAS)
        except Exception as error:
            log.warning("embeddings_alias_unreadable", error=f"{type(error).__name__}: {error}")
            return False
        current = self._content[0] if self._content else None
        if version is None or version == current or not self._should_try("content", version):
            return False
        try:
            artifact = load_artifact(self.embeddings, version)
            similarity = ContentSimilarity.from_artifact(artifact)
        except Exception as error:
            self._failed[("content", version)] = time.monotonic()
            MODEL_LOADS.labels(kind="embeddings", outcome="refused").inc()
            log.error("embeddings_refused", version=version, error=f"{error}")
            return False
        MODEL_LOADS.labels(kind="embeddings", outcome="loaded").inc()
        self._content = (version, similarity)
        return True

    def _refresh_catalog(self) -> bool:
        """Apply what changed in the catalog since the last read. Reading and comparing every
        item took most of a second on a large catalog, holding the GIL while requests waited;
        now only recently upserted rows are read. True on the first read or when an item differs."""
        age = time.monotonic() - self._catalog_at
        if self._catalog_at and age < self.serving.catalog_refresh_seconds:
            return False
        first = self._catalog_watermark is None
        try:
            items, watermark = self.stores.catalog.items_changed_since(self._catalog_watermark)
        except Exception as error:
            self.catalog_error = f"{type(error).__name__}: {error}"
            log.warning("catalog_refresh_failed", error=self.catalog_error)
            return False
        self.catalog_error = None
        # Rows re-read in the store's overlap window are usually what is held already.
        changed = {item.item_id: item for item in items if self._catalog.get(item.item_id) != item}
        if changed:
            added = not changed.keys() <= self._catalog.keys()
            self._catalog.update(changed)
            if added:  # keep item_id order, as a full read gives it
                self._catalog = dict(sorted(self._catalog.items()))
        self._catalog_watermark = watermark
        self._catalog_at = time.monotonic()
        return bool(changed) or first

    # -- requests ------------------------------------------------------------------------

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
    ) -> Lookup:
        """The user's precomputed list when it still holds (``stored``), or the shared list
        of users nobody knows yet (``served``); else what the look read on the way, for
        ``recommend`` to rank with."""
        if user_id is None or not self._precomputable(request, session_items, ranking):
            return Lookup()
        started = time.perf_counter()
        snapshot = self.snapshot
        stored, entries, outcome = self._precomputed(snapshot, user_id)
        if stored is not None:
            LATENCY.labels(stage="precomputed").observe((time.perf_counter() - started) * 1000)
            self._observe(stored, [])
            return Lookup(stored=stored, entries=entries)
        if outcome == "missing":
            shared, entries = self._anonymous_list(snapshot, user_id, request)
            if shared is not None:
                self._observe(shared.ranked, [])
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
    ) -> Served:
        """A ranked list for a user (or an anonymous session's items): the user's precomputed
        list while it holds, else ranked now. Never raises for a store that is down: the
        list is then ``degraded``. ``looked_up``: the caller already ran ``lookup``."""
        found = looked_up or self.lookup(
            user_id, request, session_items=session_items, ranking=ranking
        )
        if found.stored is not None:
            try:
                return Served(found.stored.ranked(explain=request.explain), precomputed=True)
            except (ValueError, TypeError, KeyError) as error:  # damaged items: rank instead
                log.warning("precomputed_unreadable", error=f"{type(error).__name__}")
        if found.served is not None:
            return found.served
        started = time.perf_counter()
        snapshot = self.snapshot
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
            LATENCY.labels(stage=stage).observe(ms)
        self._observe(ranked, served.degraded)
        if (
            found.entries == []  # looked up, and the user has no recent activity
            and ranked.segment == "unknown"
            and not served.degraded
            and not served.used_affinity
        ):
            self._anonymous[(request.k, request.explain)] = (time.monotonic(), snapshot, served)
        return served

    def _anonymous_list(
        self, snapshot: Snapshot, user_id: str, request: RankRequest
    ) -> tuple[Served | None, list[bytes] | None]:
        """The list every user the model does not know and with no recent activity gets,
        ranked once per worker every ``ANONYMOUS_CACHE_SECONDS`` (it changes only with the
        published lists, which are cached as long); and the user's activity entries."""
        if snapshot.model is not None and snapshot.model.model.users_.index_of(user_id) >= 0:
            return None, None
        try:
            entries = self.activity.read_raw(user_id)
        except Exception:  # the on-demand path reports it
            return None, None
        cached = self._anonymous.get((request.k, request.explain))
        if entries or cached is None:
            return None, entries
        at, ranked_on, served = cached
        if ranked_on is not snapshot or time.monotonic() - at > ANONYMOUS_CACHE_SECONDS:
            return None, entries
        return served, entries

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
        context, marker = self._context(
            snapshot, user_id, session_items, request.category, settings, request.k, entries
        )
        context_ms = (time.perf_counter() - started) * 1000
        ranked = rank(snapshot, context, request, settings)
        ranked.timings_ms = {"context": context_ms, **ranked.timings_ms}
        ranked.timings_ms["total"] = (time.perf_counter() - started) * 1000
        used_affinity = bool(context.category_affinity)
        return Served(ranked, context.degraded, used_affinity=used_affinity), marker

    def _observe(self, ranked: RankedList | PrecomputedList, degraded: list[str]) -> None:
        SEGMENTS.labels(segment=ranked.segment).inc()
        BLEND_RATIO.set(ranked.blend_ratio)
        DIVERSITY.set(ranked.diversity)
        RECENCY.set(ranked.recency_weight)
        for reason in degraded:
            DEGRADED.labels(reason=reason).inc()

    @property
    def fingerprint(self) -> str:
        """The configured ranking settings' fingerprint (what precomputed lists must match)."""
        if self._fingerprint is None:
            self._fingerprint = settings_fingerprint(
                self.settings.ranking, self.serving.precomputed_k
            )
        return self._fingerprint

    def _precomputable(
        self, request: RankRequest, session_items: Sequence[str], ranking: RankingSettings | None
    ) -> bool:
        """Only the default request shape has a precomputed list."""
        return (
            self.serving.precomputed
            and request.k == self.serving.precomputed_k
            and request.category is None
            and not request.exclude
            and request.now is None
            and not session_items
            and (ranking is None or ranking is self.settings.ranking)
        )

    def _precomputed(
        self, snapshot: Snapshot, user_id: str
    ) -> tuple[PrecomputedList | None, list[bytes] | None, str]:
        """The user's stored list if it still holds (see ``tastebud.ranking.precomputed``),
        their recent-activity entries when they were read on the way, and the outcome."""
        stored: PrecomputedList | None = None
        entries: list[bytes] | None = None
        try:
            raw = self.stores.online.get(precomputed_key(user_id))
            stored = None if raw is None else PrecomputedList.decode(raw)
            if raw is None:
                outcome = "missing"
            elif stored is None:
                outcome = "unreadable"
            else:
                outcome = self._stale(snapshot, stored) or ""
                if not outcome:
                    entries = self.activity.read_raw(user_id)
                    if activity_marker(entries) != stored.activity:
                        outcome = "stale_activity"
                    else:
                        outcome = self._inactive(snapshot, stored) or "hit"
        except Exception as error:  # the on-demand path reports the store as degraded
            outcome = "unreadable"
            log.warning("precomputed_unreadable", error=f"{type(error).__name__}")
        PRECOMPUTED.labels(outcome=outcome).inc()
        return (stored if outcome == "hit" else None), entries, outcome

    def _stale(self, snapshot: Snapshot, stored: PrecomputedList) -> str | None:
        if (
            stored.model_version != snapshot.model_version
            or stored.content_version != snapshot.content_version
        ):
            return "stale_model"
        if stored.fingerprint != self.fingerprint:
            return "stale_settings"
        if time.time() - stored.ranked_at > self.serving.precomputed_max_age_seconds:
            return "expired"
        if self.catalog_error is not None:
            return "degraded"
        return None

    def _inactive(self, snapshot: Snapshot, stored: PrecomputedList) -> str | None:
        """An item deactivated since the list was ranked (items are never deleted, and the
        model and embeddings versions match, so every stored id is still known)."""
        inactive = snapshot.inactive_ids
        if inactive and not inactive.isdisjoint(stored.item_ids):
            return "inactive_item"
        return None

    def _check_category(self, snapshot: Snapshot, category: str | None) -> None:
        known = category is None or not snapshot.catalog_loaded
        if not known and not snapshot.category_known(category):  # type: ignore[arg-type]
            raise UnknownCategory(category)

    def _context(
        self,
        snapshot: Snapshot,
        user_id: str | None,
        session_items: Sequence[str],
        category: str | None,
        settings: RankingSettings,
        k: int,
        entries: list[bytes] | None = None,
    ) -> tuple[UserContext, str | None]:
        context = UserContext(user_id=user_id, session_items=list(session_items))
        marker = None
        if self.catalog_error is not None:
            context.degraded.append("catalog")
        if user_id is not None:
            try:
                if entries is None:
                    entries = self.activity.read_raw(user_id)
                marker = activity_marker(entries)
                context.recent = self.activity.parse(user_id, entries)
            except Exception as error:
                context.degraded.append("recent_activity")
                log.warning("recent_activity_unreadable", error=f"{type(error).__name__}")
        context.trending = self._list("trending", category, context.degraded)
        context.popular = snapshot.filled_popular(
            self._list("popularity", category, context.degraded),
            category,
            max(settings.candidates.popular, k),
        )
        if user_id is not None and self._needs_prior(snapshot, user_id, context, settings):
            context.category_affinity = self._affinity(user_id, context.degraded)
        return context, marker

    def _needs_prior(
        self, snapshot: Snapshot, user_id: str, context: UserContext, settings: RankingSettings
    ) -> bool:
        """Whether the popularity prior weighs in (cold users): only then are the user's
        category affinities worth a feature lookup."""
        known = 0
        if snapshot.model is not None:
            row = snapshot.model.model.users_.index_of(user_id)
            if row >= 0:
                indptr = snapshot.model.model.user_items_.indptr
                known = int(indptr[row + 1] - indptr[row])
        return known + len(context.recent) < settings.cold_start.min_interactions

    def _list(self, namespace: str, category: str | None, degraded: list[str]) -> list[str] | None:
        """A published list's item ids (cached a few seconds: they change hourly). A failed
        read is tried again after ``PUBLISHED_RETRY_SECONDS``, so the lists are back soon
        after the store is (on the request path the store's breaker keeps the tries cheap)."""
        key = (namespace, category)
        cached = self._published.get(key)
        now = time.monotonic()
        keep = PUBLISHED_RETRY_SECONDS if cached and cached.failed else PUBLISHED_CACHE_SECONDS
        if cached is not None and now - cached.fetched < keep:
            if cached.failed:
                degraded.append(namespace)
            return cached.ids
        try:
            document = PublishedOutputs(self.stores.online).read(namespace, category)
        except Exception as error:
            log.warning("published_list_unreadable", namespace=namespace, error=str(error))
            degraded.append(namespace)
            stale = cached.ids if cached is not None else None
            self._published[key] = _Published(stale, now, failed=True)
            return stale
        ids = None if document is None else [entry["item_id"] for entry in document["items"]]
        self._published[key] = _Published(ids, now)
        return ids

    def _affinity(self, user_id: str, degraded: list[str]) -> dict[str, float]:
        try:
            service = self._features() if self._features is not None else None
            if service is None:
                return {}
            result = service.get_online_features({"user": [user_id]}, list(AFFINITY_FEATURES))
        except Exception as error:
            degraded.append("features")
            log.warning("features_unreadable", error=f"{type(error).__name__}: {error}")
            return {}
        values = result.values.get("user", {}).get(user_id, {})
        names = values.get(AFFINITY_FEATURES[0]) or []
        shares = values.get(AFFINITY_FEATURES[1]) or []
        return {str(n): float(s) for n, s in zip(names, shares, strict=False)}

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
        ids = snapshot.filled_popular(self._list("popularity", category, degraded), category, k)
        positions = snapshot.positions(ids)
        active = [
            item_id
            for item_id, p in zip(ids, positions.tolist(), strict=True)
            if p < 0 or snapshot.catalog.active[p]
        ]
        items = [{"item_id": item_id, "rank": i + 1} for i, item_id in enumerate(active[:k])]
        return items, degraded


def _smoke(model: Recommender) -> bool:
    """A version serves only if it can rank: one recommendation for its first user."""
    if len(model.users_) == 0 or len(model.items_) == 0:
        return False
    ids, _ = model.recommend([model.users_.ids[0].as_py()], k=1)
    return ids.shape == (1, 1)
