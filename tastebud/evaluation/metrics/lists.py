"""Shared handling of recommendation lists: validation, truncation at K, sparse forms.

A batch of lists is an int64 array ``(n_users, k_max)`` of item indices, best first, with
-1 where a list has no item at that rank (padding). Truncating at a K larger than k_max
pads with -1, so a short list is simply a list with empty ranks.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

PADDING = -1


def check_recommended(recommended: np.ndarray, n_items: int | None = None) -> np.ndarray:
    """``recommended`` as a 2-D int64 array, refusing what would silently skew metrics:
    indices outside the catalog, negative values other than -1, duplicates in a list."""
    array = np.asarray(recommended)
    if array.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"recommended must hold integer item indices, got {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.size == 0:
        return array
    if (array < PADDING).any():
        raise ValueError("recommended holds negative indices other than -1 (padding)")
    if n_items is not None and array.max() >= n_items:
        raise ValueError(f"recommended holds item index {array.max()} >= n_items ({n_items})")
    ordered = np.sort(array, axis=1)
    if ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != PADDING)).any():
        raise ValueError("a recommendation list holds the same item twice")
    return array


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"K must be a positive integer, got {k!r}")
    return int(k)


def top_k(recommended: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` ranks, padded with -1 when the lists are shorter."""
    k = check_k(k)
    head = recommended[:, :k]
    if head.shape[1] < k:
        padding = np.full((head.shape[0], k - head.shape[1]), PADDING, dtype=np.int64)
        head = np.hstack([head, padding])
    return head


def list_matrix(lists: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Lists as a binary sparse (n_users, n_items) matrix; padding dropped."""
    rows = np.repeat(np.arange(lists.shape[0]), lists.shape[1])
    cols = lists.ravel()
    keep = cols != PADDING
    data = np.ones(int(keep.sum()), dtype=np.float64)
    return sp.csr_matrix((data, (rows[keep], cols[keep])), shape=(lists.shape[0], n_items))
