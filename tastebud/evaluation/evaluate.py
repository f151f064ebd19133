"""One entry point from lists and relevance to a flat dict of metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from tastebud.evaluation.metrics.accuracy import ACCURACY_METRICS, judge
from tastebud.evaluation.metrics.beyond import (
    catalog_coverage,
    gini,
    intra_list_diversity,
    novelty,
    personalization,
)
from tastebud.evaluation.metrics.lists import check_k, top_k

DEFAULT_KS = (5, 10, 20)


def _mean(values: np.ndarray) -> float:
    """Mean over defined values; NaN (not a warning) when there are none."""
    defined = values[np.isfinite(values)]
    return float(defined.mean()) if defined.size else float("nan")


def evaluate_rankings(
    recommended: np.ndarray,
    relevant: sp.spmatrix | sp.sparray,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    item_popularity: np.ndarray | None = None,
    n_train_users: int | None = None,
    item_vectors: np.ndarray | sp.spmatrix | sp.sparray | None = None,
    train_matrix: sp.spmatrix | sp.sparray | None = None,
) -> dict[str, float]:
    """Every metric at every K for row-aligned lists and relevance.

    ``recommended`` is int64 (n_users, k_max) of item indices, -1 for padding; ``relevant``
    a sparse (n_users, n_items) matrix, nonzero = relevant. Accuracy metrics (``ndcg@K``,
    ``recall@K``, ``precision@K``, ``map@K``, ``mrr@K``, ``hitrate@K``) average over users
    with at least one relevant item; ``users_evaluated`` and ``users_without_relevant``
    count both kinds. Beyond-accuracy metrics use every list: ``coverage@K``, ``gini@K``
    and ``personalization@K`` always; ``novelty@K`` with ``item_popularity`` (train
    counts; see ``metrics.beyond.novelty`` for ``n_train_users``); ``ild@K`` with
    ``item_vectors`` (n_items, d), else with the columns of ``train_matrix`` (train users x
    items), else left out. Undefined averages are NaN.
    """
    chosen = sorted({check_k(k) for k in ks})
    if not chosen:
        raise ValueError("ks must name at least one K")
    judged = judge(recommended, relevant)
    lists = np.asarray(recommended, dtype=np.int64)
    n_items = relevant.shape[1]
    vectors = item_vectors
    if vectors is None and train_matrix is not None:
        if train_matrix.shape[1] != n_items:
            raise ValueError(
                f"train_matrix has {train_matrix.shape[1]} items, relevant has {n_items}"
            )
        vectors = sp.csr_matrix(train_matrix).T.tocsr()
    if item_popularity is not None and len(item_popularity) != n_items:
        raise ValueError(f"item_popularity has {len(item_popularity)} items, expected {n_items}")

    results: dict[str, float] = {}
    for k in chosen:
        for name, metric in ACCURACY_METRICS.items():
            results[f"{name}@{k}"] = _mean(metric(judged, k))
        head = top_k(lists, k)
        results[f"coverage@{k}"] = catalog_coverage(head, n_items)
        if vectors is not None:
            results[f"ild@{k}"] = _mean(intra_list_diversity(head, vectors))
        if item_popularity is not None:
            results[f"novelty@{k}"] = _mean(novelty(head, item_popularity, n_train_users))
        results[f"gini@{k}"] = gini(head, n_items)
        results[f"personalization@{k}"] = personalization(head, n_items)
    results["users_evaluated"] = int(judged.judgeable.sum())
    results["users_without_relevant"] = int((~judged.judgeable).sum())
    return results
