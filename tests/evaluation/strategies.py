"""Hypothesis strategies for random recommendation batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st


@dataclass(frozen=True)
class Batch:
    recommended: np.ndarray
    relevant: sp.csr_matrix
    relevant_sets: list[set[int]]
    n_items: int


@st.composite
def batches(draw: st.DrawFn, max_users: int = 12, max_items: int = 25) -> Batch:
    """Lists of distinct items with trailing padding, and random relevant sets (some
    empty), built from one seed so shrinking stays cheap."""
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(1, max_items))
    k_max = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    recommended = np.full((n_users, k_max), -1, dtype=np.int64)
    sets: list[set[int]] = []
    for user in range(n_users):
        length = int(rng.integers(0, min(k_max, n_items) + 1))
        recommended[user, :length] = rng.permutation(n_items)[:length]
        size = int(rng.integers(0, n_items + 1)) if rng.random() < 0.85 else 0
        sets.append({int(i) for i in rng.permutation(n_items)[:size]})
    rows = [u for u, items in enumerate(sets) for _ in items]
    cols = [i for items in sets for i in sorted(items)]
    relevant = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items), dtype=np.float64
    )
    return Batch(recommended, relevant, sets, n_items)
