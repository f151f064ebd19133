"""Beyond-accuracy metrics: what the lists look like, whatever the user went on to do.

They read only the lists (truncated at K with ``lists.top_k``) and train-side context, so
they are computed over every user with a non-empty list, judgeable or not.

- Catalog coverage = distinct recommended items / n_items.
- Intra-list diversity (ILD) = per list, mean over item pairs of (1 - cosine(v_i, v_j));
  averaged over lists with at least two items. Items with a zero vector have cosine 0 with
  everything. Vectors are dense embeddings or the train user x item matrix's columns.
- Novelty = per list, mean self-information -log2(p_i) of its items, averaged over lists;
  p_i = popularity_i / n_train_users (the share of train users who had the item; pass
  distinct-user counts) or, without ``n_train_users``, popularity_i / sum(popularity).
  Counts are floored at 1 so an item never seen in training scores as seen once, and p is
  capped at 1.
- Gini of how often each catalog item is recommended (never-recommended items count as 0):
  0 when every item is recommended equally often, near 1 when a few items take every slot.
- Personalization = 1 - mean cosine similarity between two users' binary list vectors
  (|A n B| / sqrt(|A||B|), i.e. the share of a K-list another user also got), over all
  pairs of users. Computed exactly in O(n K) — sum over pairs of cosines =
  ||sum_a a/|a|||^2 - n — so no sampling is needed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tastebud.evaluation.metrics.lists import PADDING, list_matrix

# Slots x dimensions processed per chunk when summing dense vectors (~32 MB of float64).
CHUNK_ELEMENTS = 1 << 22


def catalog_coverage(lists: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one list."""
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    return len(np.unique(lists[lists != PADDING])) / n_items


def _normalised_dense(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(vectors, axis=1)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return vectors * scale[:, None], (norms > 0).astype(np.float64)


def _normalised_sparse(vectors: sp.spmatrix | sp.sparray) -> tuple[sp.csr_matrix, np.ndarray]:
    matrix = sp.csr_matrix(vectors, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ matrix), (norms > 0).astype(np.float64)


def _pair_similarity_sums_dense(lists: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Per list, the sum of cosines over its item pairs: (||sum v||^2 - sum ||v||^2) / 2."""
    unit, nonzero = _normalised_dense(np.asarray(vectors, dtype=np.float64))
    totals = np.empty(lists.shape[0])
    per_chunk = max(1, CHUNK_ELEMENTS // max(1, lists.shape[1] * unit.shape[1]))
    for start in range(0, lists.shape[0], per_chunk):
        block = lists[start : start + per_chunk]
        valid = block != PADDING
        gathered = unit[np.where(valid, block, 0)] * valid[:, :, None]
        summed = gathered.sum(axis=1)
        self_terms = (nonzero[np.where(valid, block, 0)] * valid).sum(axis=1)
        totals[start : start + per_chunk] = ((summed**2).sum(axis=1) - self_terms) / 2
    return totals


def _pair_similarity_sums_sparse(lists: np.ndarray, vectors: sp.spmatrix) -> np.ndarray:
    """Per list, the sum of cosines over its item pairs, for sparse item vectors (such as
    train matrix columns, where the sum trick would touch every interaction of every
    recommended item once per list).

    Only the distinct pairs that occur in some list are looked up, in the item-item cosine
    matrix of the recommended items, computed one block of rows at a time so memory stays
    bounded whatever the catalog size.
    """
    unit, _ = _normalised_sparse(vectors)
    valid = lists != PADDING
    shown = np.unique(lists[valid])
    n = np.int64(len(shown))
    local = np.full(lists.shape, -1, dtype=np.int64)
    local[valid] = np.searchsorted(shown, lists[valid])
    first, second = np.triu_indices(lists.shape[1], k=1)
    a, b = local[:, first], local[:, second]
    present = (a >= 0) & (b >= 0)
    owner = np.broadcast_to(np.arange(lists.shape[0])[:, None], a.shape)[present]
    low, high = np.minimum(a, b)[present], np.maximum(a, b)[present]
    pairs, inverse = np.unique(low * n + high, return_inverse=True)
    similarity = np.zeros(len(pairs))
    rows = sp.csr_matrix(unit[shown])
    columns = sp.csr_matrix(rows.T)
    block = max(1, CHUNK_ELEMENTS // max(1, int(n)))
    for begin in range(0, int(n), block):
        stop = min(begin + block, int(n))
        lo, hi = np.searchsorted(pairs, [begin * n, stop * n])
        if lo == hi:
            continue
        gram = (rows[begin:stop] @ columns).toarray()
        wanted = pairs[lo:hi]
        similarity[lo:hi] = gram[wanted // n - begin, wanted % n]
    return np.bincount(owner, weights=similarity[inverse], minlength=lists.shape[0])


def intra_list_diversity(
    lists: np.ndarray, item_vectors: np.ndarray | sp.spmatrix | sp.sparray
) -> np.ndarray:
    """Per list, mean pairwise cosine distance of its items; NaN for lists under 2 items.

    ``item_vectors`` is (n_items, d): dense embeddings, or sparse rows such as the
    transposed train user x item matrix (each item described by who interacted with it).
    """
    if not sp.issparse(item_vectors):
        item_vectors = np.asarray(item_vectors, dtype=np.float64)
    if item_vectors.ndim != 2 or int(lists.max(initial=PADDING)) >= item_vectors.shape[0]:
        raise ValueError(
            "item_vectors must be (n_items, d) covering every recommended item, "
            f"got shape {item_vectors.shape}"
        )
    if sp.issparse(item_vectors):
        sums = _pair_similarity_sums_sparse(lists, item_vectors)
    else:
        sums = _pair_similarity_sums_dense(lists, item_vectors)
    sizes = (lists != PADDING).sum(axis=1)
    pairs = sizes * (sizes - 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, 1.0 - sums / pairs, np.nan)


def novelty(
    lists: np.ndarray, item_popularity: np.ndarray, n_train_users: int | None = None
) -> np.ndarray:
    """Per list, mean self-information -log2(p_i) of its items; NaN for empty lists."""
    popularity = np.asarray(item_popularity, dtype=np.float64)
    if popularity.ndim != 1 or int(lists.max(initial=PADDING)) >= len(popularity):
        raise ValueError("item_popularity must be 1-D with one count per catalog item")
    if (popularity < 0).any() or not np.isfinite(popularity).all():
        raise ValueError("item_popularity must hold finite, non-negative counts")
    counts = np.maximum(popularity, 1.0)
    if n_train_users is not None:
        if n_train_users <= 0:
            raise ValueError(f"n_train_users must be positive, got {n_train_users}")
        share = np.minimum(counts / n_train_users, 1.0)
    else:
        share = counts / counts.sum()
    information = -np.log2(share)
    valid = lists != PADDING
    sizes = valid.sum(axis=1)
    totals = (information[np.where(valid, lists, 0)] * valid).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sizes > 0, totals / sizes, np.nan)


def gini(lists: np.ndarray, n_items: int) -> float:
    """Gini coefficient of recommendation counts over the whole catalog."""
    counts = np.sort(np.bincount(lists[lists != PADDING], minlength=n_items).astype(np.float64))
    total = counts.sum()
    if total == 0:
        return float("nan")
    ranks = np.arange(1, n_items + 1)
    return float(((2 * ranks - n_items - 1) * counts).sum() / (n_items * total))


def personalization(lists: np.ndarray, n_items: int) -> float:
    """1 - mean pairwise cosine between users' binary lists (users with empty lists left
    out); NaN with fewer than two lists."""
    matrix = list_matrix(lists, n_items)
    sizes = np.diff(matrix.indptr)
    matrix = matrix[sizes > 0]
    n = matrix.shape[0]
    if n < 2:
        return float("nan")
    weights = 1.0 / np.sqrt(sizes[sizes > 0])
    column_sums = np.asarray(matrix.T @ weights).ravel()
    pair_sum = float((column_sums**2).sum()) - n
    return 1.0 - pair_sum / (n * (n - 1))
