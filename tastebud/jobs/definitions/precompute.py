"""Rank users' default lists and store them in the online store, ``WRITE_BATCH`` at a time:
the one loop the ``recommendations`` job runs over every user on the local engine and
``batch_scoring`` runs over each partition on Spark's executors."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tastebud.features.store import FeatureStore, open_feature_store
from tastebud.observability import get_logger
from tastebud.ranking.pipeline import RankRequest
from tastebud.ranking.precomputed import PrecomputedList, precomputed_key

if TYPE_CHECKING:
    from tastebud.config import ServingSettings, Settings
    from tastebud.ranking.recommender import RecommendationService
    from tastebud.stores import OnlineStore, Stores

log = get_logger("tastebud.jobs.recommendations")
WRITE_BATCH = 1_000


@dataclass
class Tally:
    """What ranking a set of users did: lists written, users skipped (degraded), segments."""

    written: int = 0
    degraded: int = 0
    segments: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.written += other.written
        self.degraded += other.degraded
        self.segments.update(other.segments)


def rank_users(
    service: RecommendationService,
    users: Iterable[str],
    online: OnlineStore,
    serving: ServingSettings,
    check: Callable[[], None],
) -> Tally:
    """Rank each user's default list and store it, ``WRITE_BATCH`` lists per write (the
    local engine runs it over every user; the Spark engine over each partition)."""
    snapshot = service.snapshot
    request = RankRequest(k=serving.precomputed_k, explain=True)
    tally = Tally()
    batch: dict[str, bytes] = {}

    def flush() -> None:
        if batch:
            check()
            online.set_many(batch, ttl_seconds=serving.precomputed_max_age_seconds)
            tally.written += len(batch)
            batch.clear()

    for user_id in users:
        # One moment for the ranking and the stored ranked_at: the list is exactly the one
        # ranked "as of ranked_at" (the recency boost moves with the clock).
        ranked_at = time.time()
        served, marker = service.compute(user_id, replace(request, now=ranked_at))
        if served.degraded:
            tally.degraded += 1
            continue
        tally.segments[served.ranked.segment] += 1
        stored = PrecomputedList.of(
            served.ranked,
            content_version=snapshot.content_version,
            fingerprint=service.fingerprint,
            activity=marker,
            ranked_at=ranked_at,
        )
        batch[precomputed_key(user_id)] = stored.encode()
        if len(batch) >= WRITE_BATCH:
            flush()
    flush()
    return tally


def features_for(settings: Settings, stores: Stores) -> FeatureStore | None:
    """The feature store for cold users' category affinity; None when it is not set up
    (cold users are then ranked without it, as the server would)."""
    try:
        return open_feature_store(settings, stores.online)
    except Exception as error:
        log.warning("feature_store_unavailable", error=f"{type(error).__name__}: {error}")
        return None
