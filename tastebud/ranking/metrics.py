"""The serving metrics of ranking (Prometheus, ``tastebud_reco_*``): per-stage latency, the
shape of the lists served, degraded requests, model loads and precomputed-list outcomes."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tastebud.observability import metrics

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


@lru_cache(maxsize=64)
def stage_latency(stage: str) -> Any:
    """``LATENCY``'s child for one stage, looked up once: ``labels()`` validates and locks
    on every call, and a ranked request observes eight stages."""
    return LATENCY.labels(stage=stage)


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
