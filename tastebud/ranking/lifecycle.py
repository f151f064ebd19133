"""Model lifecycle, one per worker process, apart from the request path: keeps a
``Snapshot`` current and hands it to requests.

A watcher thread checks the registry alias (``serving.model_alias``, default
``production``) and the production embeddings every ``serving.poll_seconds``. A new version
is fetched, checksum-verified, loaded and smoke-tested off the request path, then swapped
in with one assignment; a version that fails any step is refused (logged, counted, retried
after ``serving.retry_failed_seconds``) and the current one keeps serving. The catalog is
re-read incrementally every ``serving.catalog_refresh_seconds``; a failed refresh keeps the
last catalog and sets ``catalog_error`` until a refresh succeeds.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from tastebud.config import Settings
from tastebud.content.artifact import ALIAS as EMBEDDINGS_ALIAS
from tastebud.content.artifact import load_artifact
from tastebud.content.catalog_embedding import registry_for
from tastebud.content.similarity import ContentSimilarity
from tastebud.models.base import Recommender
from tastebud.observability import get_logger
from tastebud.ranking.index_artifact import load_index
from tastebud.ranking.metrics import MODEL_LOADS
from tastebud.ranking.rerank import compiled_kernels
from tastebud.ranking.snapshot import ServingModel, Snapshot
from tastebud.registry.registry import ModelRegistry, open_registry
from tastebud.schemas import Item
from tastebud.stores import Stores

log = get_logger("tastebud.ranking")


class ModelLifecycle:
    """The current snapshot (``snapshot``) and what keeps it current."""

    def __init__(
        self,
        settings: Settings,
        stores: Stores,
        *,
        registry: ModelRegistry | None = None,
        embeddings: ModelRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.serving = settings.serving
        self.registry = registry or open_registry(settings, stores.artifacts)
        self.embeddings = embeddings or registry_for(settings, stores)
        self.snapshot = Snapshot.build(None, None, [], catalog_loaded=False)
        self._model: ServingModel | None = None
        self._content: tuple[str, ContentSimilarity] | None = None
        self._catalog: dict[str, Item] = {}  # item_id -> Item, ordered by item_id
        self._catalog_at = 0.0
        self._catalog_watermark: float | None = None  # None: not read yet
        self.catalog_error: str | None = None
        self._failed: dict[tuple[str, str], float] = {}
        # Why the alias's version is not what serves (None when it is): /readyz says it.
        self.model_problem: str | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def catalog_items(self) -> list[Item]:
        """The catalog as held, in item_id order."""
        return list(self._catalog.values())

    def expire_catalog(self) -> None:
        """Make the next ``refresh`` re-read the catalog whatever its age."""
        self._catalog_at = 0.0

    def start(self, *, watch: bool = True) -> None:
        """Load what there is now (so the first request has the model, and the selection's
        kernel is compiled), then keep watching."""
        compiled_kernels()
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

    def snapshot_with(self, model: ServingModel) -> Snapshot:
        """A snapshot like the current one (embeddings, catalog) that ranks with ``model``:
        an experiment variant's (``tastebud.ranking.variants``)."""
        with self._refresh_lock:
            content = self._content
            items = list(self._catalog.values())
            loaded = self.snapshot.catalog_loaded
        return Snapshot.build(
            model,
            content[1] if content else None,
            items,
            content_version=content[0] if content else None,
            catalog_loaded=loaded,
        )

    def load_for(self, kind: str, version: str) -> tuple[ServingModel | None, str | None]:
        """Load a version for what ranks beside production (``variant``, ``shadow``), with
        the retry bookkeeping production's own loads use: ``(model, None)``; ``(None, why)``
        when it is refused (counted, logged); ``(None, None)`` while a refused version waits
        ``retry_failed_seconds`` to be tried again."""
        if not self._should_try(kind, version):
            return None, None
        try:
            model = self.load_model(version)
        except Exception as error:
            self._failed[(kind, version)] = time.monotonic()
            MODEL_LOADS.labels(kind=kind, outcome="refused").inc()
            reason = f"{type(error).__name__}: {error}"[:300]
            log.error(f"{kind}_model_refused", version=version, error=reason)
            return None, reason
        self._failed.pop((kind, version), None)
        MODEL_LOADS.labels(kind=kind, outcome="loaded").inc()
        log.info(f"{kind}_model_loaded", version=version)
        return model, None

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
            reason = f"{type(error).__name__}: {error}"
            log.error("model_refused", version=version, serving=current, error=reason)
            alias = self.serving.model_alias
            self.model_problem = f"{alias} -> {version} cannot be loaded ({reason[:300]})"
            return current is None and self._fall_back(version)
        MODEL_LOADS.labels(kind="model", outcome="loaded").inc()
        log.info("model_swapped", version=version, previous=current)
        self.model_problem = None
        return True

    def _fall_back(self, refused: str) -> bool:
        """With nothing serving and the alias's version refused, serve the last version the
        alias pointed to that loads (its rollback targets, newest first) and say so in
        ``model_problem``; with none, nothing serves and /readyz reports not ready."""
        try:
            earlier = self.registry.alias_state(self.serving.model_alias).previous
        except Exception as error:
            log.warning("model_alias_unreadable", error=f"{type(error).__name__}: {error}")
            return False
        for version in reversed(earlier):
            if version == refused or not self._should_try("model", version):
                continue
            try:
                self._model = self.load_model(version)
            except Exception as error:
                self._failed[("model", version)] = time.monotonic()
                log.error("model_refused", version=version, error=f"{error}")
                continue
            MODEL_LOADS.labels(kind="model", outcome="fallback").inc()
            log.error("model_fallback", refused=refused, serving=version)
            self.model_problem = f"{self.model_problem}; serving {version}, the last that loads"
            return True
        return False

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
            screen=self.settings.ranking.candidates.exact_screen,
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


def _smoke(model: Recommender) -> bool:
    """A version serves only if it can rank: one recommendation for its first user."""
    if len(model.users_) == 0 or len(model.items_) == 0:
        return False
    ids, _ = model.recommend([model.users_.ids[0].as_py()], k=1)
    return ids.shape == (1, 1)
