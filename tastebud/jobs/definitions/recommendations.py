"""``recommendations``: hourly, after ``trending``, rank every known user's default list with
the production model and store it in the online store, so serving answers the common
request with a lookup (``tastebud.ranking.precomputed`` says when a stored list still holds).

The job ranks with the same ``RecommendationService`` the server runs, reading the same
stores (recent activity, published lists, features), so a stored list is the list the
server would have ranked at that moment. On the Spark engine the users are ranked on the
executors, partition by partition, with the model version pinned and broadcast
(``batch_scoring``). Lists ranked with a store down (``degraded``) are
not stored: the server ranks those users on demand. Lists expire from the online store after
``serving.precomputed_max_age_seconds``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tastebud.engines import engine_name
from tastebud.features.store import FeatureStore, open_feature_store
from tastebud.jobs.base import JobContext
from tastebud.observability import get_logger
from tastebud.ranking.pipeline import RankRequest
from tastebud.ranking.precomputed import PrecomputedList, precomputed_key
from tastebud.ranking.recommender import RecommendationService

if TYPE_CHECKING:
    from tastebud.config import ServingSettings, Settings
    from tastebud.stores import OnlineStore, Stores

log = get_logger("tastebud.jobs.recommendations")
WRITE_BATCH = 1_000


def run(context: JobContext) -> dict[str, Any]:
    settings = context.settings
    serving = settings.serving
    if not serving.precomputed:
        return {"skipped": "serving.precomputed is off"}
    features = _features(context)
    service = RecommendationService(
        settings, context.stores, features=lambda: features.service if features else None
    )
    try:
        service.start(watch=False)
        snapshot = service.snapshot
        if snapshot.model is None:
            return {"skipped": "no production model yet"}
        return _rank_all(context, service)
    finally:
        service.stop()
        if features is not None:
            features.close()


def _rank_all(context: JobContext, service: RecommendationService) -> dict[str, Any]:
    snapshot = service.snapshot
    assert snapshot.model is not None
    serving = context.settings.serving
    users = [str(user) for user in snapshot.model.model.users_.ids.to_pylist()]
    started = time.perf_counter()
    if engine_name(context.settings, context.job_name) == "spark":
        from tastebud.jobs.definitions.batch_scoring import rank_on_spark

        tally = rank_on_spark(context, service, users)
    else:
        tally = rank_users(service, users, context.stores.online, serving, context.check)
    seconds = time.perf_counter() - started
    log.info(
        "recommendations_precomputed",
        users=len(users),
        written=tally.written,
        degraded=tally.degraded,
    )
    return {
        "model_version": snapshot.model_version,
        "embeddings": snapshot.content_version,
        "users": len(users),
        "written": tally.written,
        "skipped_degraded": tally.degraded,
        "segments": dict(tally.segments),
        "k": serving.precomputed_k,
        "seconds": round(seconds, 2),
        "users_per_second": round(len(users) / seconds, 1) if seconds > 0 else None,
    }


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


def _features(context: JobContext) -> FeatureStore | None:
    return _features_for(context.settings, context.stores)


def _features_for(settings: Settings, stores: Stores) -> FeatureStore | None:
    """The feature store for cold users' category affinity; None when it is not set up
    (cold users are then ranked without it, as the server would)."""
    try:
        return open_feature_store(settings, stores.online)
    except Exception as error:
        log.warning("feature_store_unavailable", error=f"{type(error).__name__}: {error}")
        return None
