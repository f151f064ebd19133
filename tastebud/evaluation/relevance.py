"""From a test table to the relevance matrix the metrics judge lists against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from tastebud.data.vocabulary import MISSING, Vocabulary


@dataclass(frozen=True)
class RelevanceMatrix:
    """Binary (n_users, n_items) relevance and what was dropped building it.

    Rows follow ``user_ids``; an item counts once per user however often it is in test.
    Each dropped test row is counted once, under the first reason that applies: rating
    below ``min_rating``, then item unknown, then user unknown.
    """

    matrix: sp.csr_matrix
    rows_used: int
    dropped_unknown_items: int
    dropped_unknown_users: int
    dropped_below_rating: int


def _item_positions(
    items: pa.Array, item_index: Mapping[str, int] | Vocabulary, n_items: int
) -> np.ndarray:
    if isinstance(item_index, Vocabulary):
        positions = item_index.index(items)
    else:
        keys = pa.array(list(item_index.keys()), pa.string())
        values = np.fromiter(item_index.values(), dtype=np.int64, count=len(item_index))
        found = pc.index_in(items, value_set=keys).fill_null(MISSING).to_numpy()
        found = np.asarray(found, dtype=np.int64)
        positions = np.where(found >= 0, values[np.maximum(found, 0)], MISSING)
    known = positions[positions != MISSING]
    if known.size and (known.min() < 0 or known.max() >= n_items):
        raise ValueError(f"item_index maps ids to indices outside 0..{n_items - 1}")
    return positions


def relevance_matrix(
    test: pa.Table,
    user_ids: Sequence[str] | Vocabulary,
    item_index: Mapping[str, int] | Vocabulary,
    n_items: int | None = None,
    min_rating: float | None = None,
    rating_column: str = "rating",
) -> RelevanceMatrix:
    """Which test items each user in ``user_ids`` found relevant.

    Only items known in training (in ``item_index``) can be recommended, so other test
    items are dropped and counted rather than scored as unreachable misses. Test rows of
    users not in ``user_ids`` are dropped and counted too. With ``min_rating``, only rows
    whose ``rating_column`` is at least ``min_rating`` are relevant (null or NaN ratings
    are not). ``n_items`` defaults to the size of ``item_index``.
    """
    for name in ("user_id", "item_id"):
        if name not in test.column_names:
            raise ValueError(f"test table is missing column {name}")
    if isinstance(user_ids, Vocabulary):
        users = user_ids
    else:
        distinct = pa.array(list(user_ids), pa.string())
        if len(pc.unique(distinct)) != len(distinct) or distinct.null_count:
            raise ValueError("user_ids must be distinct, non-null ids (one row per user)")
        users = Vocabulary(distinct)
    size = len(item_index) if n_items is None else int(n_items)
    if size <= 0:
        raise ValueError("n_items must be positive")
    keep = np.ones(test.num_rows, dtype=bool)
    below = 0
    if min_rating is not None:
        if rating_column not in test.column_names:
            raise ValueError(f"min_rating given but test table has no {rating_column} column")
        ratings = test.column(rating_column).cast(pa.float64()).fill_null(np.nan).to_numpy()
        with np.errstate(invalid="ignore"):
            keep = np.asarray(ratings) >= min_rating
        below = int((~keep).sum())
    items = _item_positions(test.column("item_id").combine_chunks(), item_index, size)
    rows = users.index(test.column("user_id"))
    unknown_items = keep & (items == MISSING)
    unknown_users = keep & ~unknown_items & (rows == MISSING)
    keep &= (items != MISSING) & (rows != MISSING)
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], items[keep])),
        shape=(len(users), size),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return RelevanceMatrix(
        matrix=matrix,
        rows_used=int(keep.sum()),
        dropped_unknown_items=int(unknown_items.sum()),
        dropped_unknown_users=int(unknown_users.sum()),
        dropped_below_rating=below,
    )
