"""What a request reads from the stores before ranking: the user's recent activity, the
published trending and popular lists, and (for cold users) their category affinities.

Every read may fail; the request then ranks with what it has (the in-process model and its
popularity list) and its context says ``degraded`` with the reasons.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tastebud.features.serving import FeatureService
from tastebud.observability import get_logger
from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.types import UserContext
from tastebud.ranking_config import RankingSettings
from tastebud.stores import OnlineStore
from tastebud.stores.activity import RecentActivity, activity_marker
from tastebud.stores.published import PublishedOutputs

log = get_logger("tastebud.ranking")
PUBLISHED_CACHE_SECONDS = 5.0
PUBLISHED_RETRY_SECONDS = 1.0
AFFINITY_FEATURES = (
    "user_category_affinity:top_categories",
    "user_category_affinity:top_category_shares",
)


@dataclass
class _Published:
    ids: tuple[str, ...] | None
    fetched: float
    failed: bool = False


_Filled = tuple[Snapshot, tuple[str, ...] | None, tuple[str, ...]]


class ContextReader:
    """Reads a request's ``UserContext`` (one per worker: it caches the published lists)."""

    def __init__(
        self,
        online: OnlineStore,
        activity: RecentActivity,
        features: Callable[[], FeatureService | None] | None = None,
    ) -> None:
        self.published = PublishedOutputs(online)
        self.activity = activity
        self._features = features
        self._published: dict[tuple[str, str | None], _Published] = {}
        # (snapshot, published tuple, category, n) ids -> the filled popular list
        self._filled: dict[tuple[int, int, str | None, int], _Filled] = {}

    def read(
        self,
        snapshot: Snapshot,
        user_id: str | None,
        session_items: Sequence[str],
        category: str | None,
        settings: RankingSettings,
        k: int,
        *,
        entries: list[bytes] | None = None,
        catalog_error: str | None = None,
    ) -> tuple[UserContext, str | None]:
        """The context, and the activity marker it was read under (None: no activity).
        ``entries``: the user's recent-activity list when the caller already read it."""
        context = UserContext(user_id=user_id, session_items=list(session_items))
        marker = None
        if catalog_error is not None:
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
        context.trending = self.published_ids("trending", category, context.degraded)
        context.popular = self.filled_popular(
            snapshot,
            self.published_ids("popularity", category, context.degraded),
            category,
            max(settings.candidates.popular, k),
        )
        if user_id is not None and _needs_prior(snapshot, user_id, context, settings):
            context.category_affinity = self._affinity(user_id, context.degraded)
        return context, marker

    def filled_popular(
        self,
        snapshot: Snapshot,
        published: tuple[str, ...] | None,
        category: str | None,
        n: int,
    ) -> tuple[str, ...]:
        """``Snapshot.filled_popular``, computed once per snapshot, published list,
        category and length (it scans the catalog: ~10% of an on-demand request)."""
        key = (id(snapshot), id(published), category, n)
        hit = self._filled.get(key)
        if hit is not None and hit[0] is snapshot and hit[1] is published:
            return hit[2]
        filled = tuple(snapshot.filled_popular(published, category, n))
        if len(self._filled) >= 256:
            self._filled.clear()
        self._filled[key] = (snapshot, published, filled)
        return filled

    def published_ids(
        self, namespace: str, category: str | None, degraded: list[str]
    ) -> tuple[str, ...] | None:
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
            document = self.published.read(namespace, category)
        except Exception as error:
            log.warning("published_list_unreadable", namespace=namespace, error=str(error))
            degraded.append(namespace)
            stale = cached.ids if cached is not None else None
            self._published[key] = _Published(stale, now, failed=True)
            return stale
        ids = None if document is None else tuple(entry["item_id"] for entry in document["items"])
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


def _needs_prior(
    snapshot: Snapshot, user_id: str, context: UserContext, settings: RankingSettings
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
