"""Serving-side figures per model version, as Prometheus metrics: the request latency, the
scores and intra-list diversity of the lists served, their count (empty ones apart) and how
many distinct items a server process has served (coverage). ``observe_served`` is the one
hook, called where ranking observes each list it serves; it costs a few label look-ups
(cached) and a set update, no I/O. Per process: Prometheus sums the counters across workers;
the coverage gauge is per worker (take the max)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

from tastebud.observability import metrics

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = (-1.0, 0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 5.0)
SHARE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MAX_VERSIONS = 4  # versions whose served items are remembered (a rollout has two or three)
MAX_ITEMS = 1_000_000  # distinct ids remembered per version, so memory stays bounded

LATENCY = metrics.histogram(
    "model",
    "serving_latency",
    "seconds",
    "Time to rank a list on request, by model version (precomputed lists not included).",
    ["model_version"],
    buckets=LATENCY_BUCKETS,
)
SCORES = metrics.histogram(
    "model",
    "served_score",
    "value",
    "Mean score of each list ranked on request, by model version.",
    ["model_version"],
    buckets=SCORE_BUCKETS,
)
DIVERSITY = metrics.histogram(
    "model",
    "list_diversity",
    "score",
    "Intra-list diversity (mean 1 - cosine) of each list served, by model version.",
    ["model_version"],
    buckets=SHARE_BUCKETS,
)
LISTS = metrics.counter(
    "model",
    "served_lists",
    "total",
    "Lists served, by model version and whether they were empty.",
    ["model_version", "empty"],
)
COVERAGE = metrics.gauge(
    "model",
    "served_items",
    "count",
    "Distinct items this server process has served, by model version (catalog coverage).",
    ["model_version"],
)

_served: dict[str, set[str]] = {}


class ServedList(Protocol):
    model_version: str | None
    diversity: float


@lru_cache(maxsize=256)
def _children(version: str) -> tuple[Any, Any, Any, Any, Any, Any]:
    return (
        LATENCY.labels(version),
        SCORES.labels(version),
        DIVERSITY.labels(version),
        LISTS.labels(version, "false"),
        LISTS.labels(version, "true"),
        COVERAGE.labels(version),
    )


def observe_served(served: ServedList) -> None:
    """Record one list served (a ``RankedList`` or a stored ``PrecomputedList``)."""
    version = served.model_version or "none"
    latency, scores, diversity, full, empty, coverage = _children(version)
    items = getattr(served, "items", None)
    ids: list[str] = (
        [item.item_id for item in items]
        if items is not None
        else list(getattr(served, "item_ids", ()))
    )
    (full if ids else empty).inc()
    if not ids:
        return
    diversity.observe(served.diversity)
    total_ms = getattr(served, "timings_ms", {}).get("total")
    if total_ms is not None:
        latency.observe(total_ms / 1000)
    if items is not None:
        scores.observe(sum(item.score for item in items) / len(items))
    seen = _served.get(version)
    if seen is None:
        if len(_served) >= MAX_VERSIONS:
            _served.pop(next(iter(_served)))  # the oldest version seen goes first
        seen = _served[version] = set()
    if len(seen) < MAX_ITEMS:
        seen.update(ids)
        coverage.set(len(seen))
