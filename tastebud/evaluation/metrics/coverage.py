"""Factor coverage: how many of the users and items that matter got a learned vector.

A model that filters out sparse users and items, or that leaves their factors at zero,
silently falls back to cold-start lists for them. The plan asks that at least 90% of
active users and 95% of active items get factors; this module measures it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.data.vocabulary import MISSING, Vocabulary

USER_TARGET = 0.90
ITEM_TARGET = 0.95

Ids = Iterable[str] | pa.Array | pa.ChunkedArray


def _distinct(ids: Ids) -> pa.Array:
    if isinstance(ids, pa.ChunkedArray):
        array = ids.combine_chunks()
    elif isinstance(ids, pa.Array):
        array = ids
    else:
        array = pa.array(list(ids), pa.string())
    return pc.unique(array.cast(pa.string())).drop_null()


def share_with_factors(
    active: Ids, vocabulary: Vocabulary | Iterable[str], factors: np.ndarray | None = None
) -> tuple[int, int]:
    """(covered, active): distinct active ids in ``vocabulary``; with ``factors`` (rows
    aligned with the vocabulary) an id only counts when its row is finite and non-zero."""
    fitted = vocabulary if isinstance(vocabulary, Vocabulary) else Vocabulary.from_ids(vocabulary)
    distinct = _distinct(active)
    positions = fitted.index(distinct)
    known = positions != MISSING
    if factors is not None:
        rows = np.asarray(factors)
        if rows.ndim != 2 or rows.shape[0] != len(fitted):
            raise ValueError(
                f"factors must have one row per vocabulary id ({len(fitted)}), "
                f"got shape {rows.shape}"
            )
        usable = np.isfinite(rows).all(axis=1) & (rows != 0).any(axis=1)
        known[known] = usable[positions[known]]
    return int(known.sum()), len(distinct)


@dataclass(frozen=True)
class FactorCoverage:
    """Covered and active counts for users and items, with the shares and the targets."""

    covered_users: int
    active_users: int
    covered_items: int
    active_items: int

    @property
    def users(self) -> float:
        """Share of active users with factors (NaN when there are no active users)."""
        return self.covered_users / self.active_users if self.active_users else float("nan")

    @property
    def items(self) -> float:
        """Share of active items with factors (NaN when there are no active items)."""
        return self.covered_items / self.active_items if self.active_items else float("nan")

    def meets(self, users: float = USER_TARGET, items: float = ITEM_TARGET) -> bool:
        """Whether both shares reach their targets (False when either is undefined)."""
        return bool(self.users >= users and self.items >= items)

    def as_metrics(self) -> dict[str, float]:
        return {"factor_coverage_users": self.users, "factor_coverage_items": self.items}


def factor_coverage(
    active_users: Ids,
    active_items: Ids,
    user_vocabulary: Vocabulary | Iterable[str],
    item_vocabulary: Vocabulary | Iterable[str],
    user_factors: np.ndarray | None = None,
    item_factors: np.ndarray | None = None,
) -> FactorCoverage:
    """Coverage of active users and items by a fitted model's vocabularies (and factors)."""
    covered_users, n_users = share_with_factors(active_users, user_vocabulary, user_factors)
    covered_items, n_items = share_with_factors(active_items, item_vocabulary, item_factors)
    return FactorCoverage(covered_users, n_users, covered_items, n_items)
