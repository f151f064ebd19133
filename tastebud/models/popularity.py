"""Most popular items, optionally time-decayed: the baseline and the cold-start list."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import Recommender


class PopularityRecommender(Recommender):
    """Scores every item by its summed preference weight, decayed with ``half_life_days``.

    Every user gets the same ranking (minus what they have seen): a strong baseline on
    temporal splits, and what unknown users receive from every other model.
    """

    name = "popularity"

    def __init__(self, half_life_days: float | None = 30.0) -> None:
        self.half_life_days = half_life_days

    def _fit(self, data: InteractionMatrix) -> None:
        scores = data.item_popularity(self.half_life_days)
        # Break ties by plain counts so the ranking is stable across runs.
        self.scores_ = (scores + 1e-6 * self.popularity_ / max(self.popularity_.max(), 1)).astype(
            np.float32
        )
        self.popularity_ = self.scores_.astype(np.float64)

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.scores_, (histories.shape[0], len(self.scores_))).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"scores_": self.scores_}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.scores_ = state["scores_"]
