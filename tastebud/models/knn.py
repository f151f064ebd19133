"""Item-kNN through implicit's nearest-neighbour models (cosine, BM25)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError, Recommender


class ItemKNNRecommender(Recommender):
    """Scores = history @ item-item similarity, keeping each item's ``neighbors`` nearest.

    implicit computes the sparse similarity matrix (multi-threaded C++); scoring a batch
    of users is then one sparse product, which also serves anonymous histories unchanged.
    """

    name = "itemknn"

    def __init__(
        self,
        neighbors: int = 100,
        similarity: Literal["cosine", "bm25"] = "bm25",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
    ) -> None:
        self.neighbors = neighbors
        self.similarity = similarity
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b

    def _fit(self, data: InteractionMatrix) -> None:
        # lazy: implicit loads on first use, not when the API app is imported
        # lazy: implicit loads on first use, not when the API app is imported
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
        from implicit.utils import ParameterWarning

        if self.similarity == "bm25":
            model = BM25Recommender(K=self.neighbors, K1=self.bm25_k1, B=self.bm25_b)
        elif self.similarity == "cosine":
            model = CosineRecommender(K=self.neighbors)
        else:
            raise ModelError(f"unknown similarity {self.similarity!r}: use cosine or bm25")
        with warnings.catch_warnings():
            # implicit re-weights into COO internally and then warns about its own input.
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(data.matrix, show_progress=False)
        self.similarity_ = sp.csr_matrix(model.similarity, dtype=np.float32)

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        return np.asarray((histories @ self.similarity_).toarray(), dtype=np.float32)

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        return self.similarity_[columns].toarray()

    def item_similarity(self, columns: np.ndarray, others: np.ndarray) -> np.ndarray:
        """The pairs only, sliced from the sparse neighbourhoods (no dense full rows)."""
        self._check_fitted()
        rows = self.similarity_[np.asarray(columns, dtype=np.int64)]
        return np.asarray(rows[:, np.asarray(others, dtype=np.int64)].toarray(), np.float32)

    def _save_extra(self, folder: Path) -> list[str]:
        sp.save_npz(folder / "similarity.npz", self.similarity_)
        return ["similarity.npz"]

    def _load_extra(self, folder: Path) -> None:
        self.similarity_ = sp.load_npz(folder / "similarity.npz").tocsr()
