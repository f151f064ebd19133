"""Accuracy metrics over full rankings: NDCG, Recall, Precision, MAP, MRR, HitRate at K.

Lists are judged once (:func:`judge`: which ranks hold a relevant item) and every metric
reads that boolean matrix, so all metrics at all K cost one sparse lookup. Each metric
returns one value per user, NaN for users without relevant items: they cannot be judged
and are left out of averages (``evaluate_rankings`` counts them).

Definitions (rel = the user's relevant items, hit_i = 1 when rank i holds one, i from 1):

- Precision@K = hits@K / K (a short list is still judged against K slots).
- Recall@K = hits@K / |rel| (the standard form, not capped at K: a user with more relevant
  items than K cannot reach 1).
- HitRate@K = 1 if hits@K > 0 else 0.
- NDCG@K = DCG@K / IDCG@K with binary gain, DCG = sum_i hit_i / log2(i + 1) and the ideal
  DCG over min(|rel|, K) relevant items at the top.
- MAP@K: AP@K = sum_i hit_i * Precision@i / min(|rel|, K), averaged over users.
- MRR@K = 1 / rank of the first relevant item when it is within K, else 0 (cut at K).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tastebud.evaluation.metrics.lists import PADDING, check_k, check_recommended


@dataclass(frozen=True)
class Judged:
    """Which ranks of each list hold a relevant item, and how many items are relevant."""

    hits: np.ndarray  # bool (n_users, k_max)
    n_relevant: np.ndarray  # int64 (n_users,)

    @property
    def judgeable(self) -> np.ndarray:
        """Users with at least one relevant item: the ones accuracy is averaged over."""
        return self.n_relevant > 0

    def head(self, k: int) -> np.ndarray:
        """Hits at ranks 1..k, zero-padded when lists are shorter than k."""
        k = check_k(k)
        hits = self.hits[:, :k]
        if hits.shape[1] < k:
            hits = np.hstack([hits, np.zeros((hits.shape[0], k - hits.shape[1]), dtype=bool)])
        return hits


def _binary(relevant: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    if not sp.issparse(relevant):
        raise ValueError("relevant must be a scipy.sparse matrix (n_users, n_items)")
    matrix = sp.csr_matrix(relevant, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def judge(recommended: np.ndarray, relevant: sp.spmatrix | sp.sparray) -> Judged:
    """Look every recommended item up in ``relevant`` (nonzero = relevant) at once.

    Both are row-aligned; the lookup is one ``searchsorted`` over (user, item) keys, so it
    scales with the number of recommended slots, not with the catalog.
    """
    matrix = _binary(relevant)
    lists = check_recommended(recommended, matrix.shape[1])
    if lists.shape[0] != matrix.shape[0]:
        raise ValueError(
            f"recommended has {lists.shape[0]} rows but relevant has {matrix.shape[0]}; "
            "rows must be aligned user by user"
        )
    n_items = np.int64(matrix.shape[1])
    n_relevant = np.diff(matrix.indptr).astype(np.int64)
    owners = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), n_relevant)
    keys = owners * n_items + matrix.indices.astype(np.int64)  # sorted: rows, then columns
    queries = np.arange(lists.shape[0], dtype=np.int64)[:, None] * n_items + lists
    found = np.searchsorted(keys, queries)
    inside = found < len(keys)
    hits = np.zeros(lists.shape, dtype=bool)
    hits[inside] = keys[found[inside]] == queries[inside]
    hits &= lists != PADDING
    return Judged(hits=hits, n_relevant=n_relevant)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _per_user(values: np.ndarray, judged: Judged) -> np.ndarray:
    return np.where(judged.judgeable, values, np.nan)


def precision(judged: Judged, k: int) -> np.ndarray:
    """Share of the K slots holding a relevant item."""
    return _per_user(judged.head(k).sum(axis=1) / k, judged)


def recall(judged: Judged, k: int) -> np.ndarray:
    """Share of the user's relevant items found in the top K."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _per_user(judged.head(k).sum(axis=1) / judged.n_relevant, judged)


def hit_rate(judged: Judged, k: int) -> np.ndarray:
    """1 when at least one relevant item is in the top K."""
    return _per_user(judged.head(k).any(axis=1).astype(np.float64), judged)


def ndcg(judged: Judged, k: int) -> np.ndarray:
    """Binary-gain NDCG, ideal DCG over min(|rel|, K) items."""
    discounts = _discounts(k)
    dcg = judged.head(k) @ discounts
    ideal = np.concatenate(([0.0], np.cumsum(discounts)))[np.minimum(judged.n_relevant, k)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return _per_user(dcg / ideal, judged)


def average_precision(judged: Judged, k: int) -> np.ndarray:
    """AP truncated at K, normalised by min(|rel|, K) so a perfect top K scores 1."""
    hits = judged.head(k)
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    total = (precision_at * hits).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _per_user(total / np.minimum(judged.n_relevant, k), judged)


def reciprocal_rank(judged: Judged, k: int) -> np.ndarray:
    """1 / rank of the first relevant item within the top K, 0 when there is none."""
    hits = judged.head(k)
    first = hits.argmax(axis=1)
    return _per_user(np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0), judged)


ACCURACY_METRICS = {
    "ndcg": ndcg,
    "recall": recall,
    "precision": precision,
    "map": average_precision,
    "mrr": reciprocal_rank,
    "hitrate": hit_rate,
}
