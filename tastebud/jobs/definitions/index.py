"""``index``: nightly, after ``train``, build the ANN (HNSW) index of the production model and
store it beside its version, so serving can swap index and model together.

Small catalogs need no index: up to ``ranking.candidates.exact_threshold`` items exact scoring
serves within the latency budget, so the run records a skip and succeeds. A rerun for a
version whose index is already stored and verifies reuses it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tastebud.jobs.base import JobContext
from tastebud.models import Recommender
from tastebud.models.factors import FactorRecommender
from tastebud.ranking import retrieval
from tastebud.ranking.index_artifact import IndexIntegrityError, load_index, save_index
from tastebud.registry import VersionNotFound, open_registry

SKIP_EXACT = "exact scoring serves this model"  # the run's "skipped" entry
RECALL_QUERIES = 200  # sampled users whose top RECALL_AT the index is checked against
RECALL_AT = 100


def sample_recall(
    index: retrieval.HnswRetriever, item_factors: np.ndarray, user_factors: np.ndarray
) -> float:
    """Recall@RECALL_AT of the index against exact scoring for a fixed sample of users:
    a quality number in the run summary, so a bad build shows before serving uses it."""
    if len(user_factors) == 0:
        return float("nan")
    rows = np.random.default_rng(0).choice(
        len(user_factors), min(RECALL_QUERIES, len(user_factors)), replace=False
    )
    queries = user_factors[rows]
    n = min(RECALL_AT, len(item_factors))
    exact, _ = retrieval.ExactRetriever(item_factors).search(queries, n)
    found, _ = index.search(queries, n)
    hits = [len(np.intersect1d(a[a >= 0], b[b >= 0])) for a, b in zip(exact, found, strict=True)]
    return round(float(np.sum(hits) / max(1, (exact >= 0).sum())), 4)


def run(context: JobContext) -> dict[str, Any]:
    registry = open_registry(context.settings, context.stores.artifacts)
    try:
        manifest = registry.get("production")
    except VersionNotFound:
        return {"skipped": "no production model yet"}
    version = manifest.model_version
    threshold = context.settings.ranking.candidates.exact_threshold
    summary: dict[str, Any] = {
        "model_version": version,
        "model": manifest.model,
        "items": manifest.item_count,
        "exact_threshold": threshold,
    }
    # The manifest answers the common case without downloading the model.
    if manifest.item_count <= threshold:
        return {**summary, "skipped": SKIP_EXACT}
    model = registry.load(version, Recommender.load)
    if not isinstance(model, FactorRecommender):
        return {**summary, "skipped": SKIP_EXACT}
    items = np.asarray(model.item_factors_, dtype=np.float32)
    summary.update(items=int(items.shape[0]), dim=int(items.shape[1]))
    if items.shape[0] <= threshold:
        return {**summary, "skipped": SKIP_EXACT}
    try:
        existing = load_index(
            context.stores.artifacts, version, item_count=items.shape[0], dim=items.shape[1]
        )
    except IndexIntegrityError:
        existing = None  # damaged or stale: rebuild over it
    if existing is not None:
        return {**summary, "params": existing.params, "reused": True}

    started = time.perf_counter()
    index = retrieval.HnswRetriever.build(
        items,
        m=retrieval.M,
        ef_construction=retrieval.EF_CONSTRUCTION,
        ef_search=context.settings.ranking.candidates.ann_ef_search,
    )
    build_seconds = round(time.perf_counter() - started, 3)
    context.check()
    recall = sample_recall(index, items, np.asarray(model.user_factors_, dtype=np.float32))
    context.check()
    key = save_index(
        context.stores.artifacts,
        version,
        index,
        extra={"build_seconds": build_seconds, f"sample_recall@{RECALL_AT}": recall},
    )
    return {
        **summary,
        "index": key,
        "params": index.params,
        "build_seconds": build_seconds,
        f"sample_recall@{RECALL_AT}": recall,
        "reused": False,
    }
