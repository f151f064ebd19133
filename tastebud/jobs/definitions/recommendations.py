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
from typing import Any

from tastebud.engines import engine_name
from tastebud.features.store import FeatureStore
from tastebud.jobs.base import JobContext
from tastebud.jobs.definitions.batch_scoring import rank_on_spark
from tastebud.jobs.definitions.precompute import features_for, rank_users
from tastebud.observability import get_logger
from tastebud.ranking.recommender import RecommendationService

log = get_logger("tastebud.jobs.recommendations")


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


def _features(context: JobContext) -> FeatureStore | None:
    return features_for(context.settings, context.stores)
