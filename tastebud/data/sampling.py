"""Exact weighted sampling within groups, for the synthetic world (items of a category, a
creator's items) whose weights change day by day."""

from __future__ import annotations

import numpy as np


class GroupedSampler:
    """Draw members of a group in proportion to weights that change day by day.

    Members are stored sorted by group, so one cumulative sum over all of them serves every
    group: a draw for group g is a uniform integer inside g's slice of the cumulative sum,
    located with searchsorted. Integer weights make the draw exact (zero-weight members, such
    as items that do not exist yet, can never be hit).
    """

    def __init__(self, groups: np.ndarray, members: np.ndarray, factors: np.ndarray, n_groups: int):
        order = np.argsort(groups, kind="stable")
        self.members = members[order]
        self.factors = factors[order]
        self.bounds = np.searchsorted(groups[order], np.arange(n_groups + 1))

    def cumulative(self, member_weights: np.ndarray) -> np.ndarray:
        """The integer cumulative weight over all members, with a leading zero."""
        weights = member_weights[self.members] * self.factors
        total = float(weights.sum())
        scaled = np.zeros(len(weights) + 1, dtype=np.int64)
        if total > 0:
            integer = np.floor(weights * (2.0**50 / total)).astype(np.int64)
            integer[(weights > 0) & (integer == 0)] = 1
            np.cumsum(integer, out=scaled[1:])
        return scaled

    def sample(
        self, rng: np.random.Generator, cumulative: np.ndarray, groups: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One member per requested group, and a mask of the groups that had any weight."""
        low = cumulative[self.bounds[groups]]
        high = cumulative[self.bounds[groups + 1]]
        found = high > low
        draws = rng.integers(low, np.where(found, high, low + 1))
        return self._locate(cumulative, draws), found

    def sample_any(self, rng: np.random.Generator, cumulative: np.ndarray, size: int) -> np.ndarray:
        """Members drawn across all groups (caller checks that the total is positive)."""
        return self._locate(cumulative, rng.integers(0, cumulative[-1], size=size))

    def _locate(self, cumulative: np.ndarray, draws: np.ndarray) -> np.ndarray:
        index = np.searchsorted(cumulative, draws, side="right") - 1
        return self.members[np.minimum(index, len(self.members) - 1)]
