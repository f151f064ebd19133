"""User-kNN: a user's scores are the histories of the most similar users.

On small, dense data (MovieLens 100K: 943 users, ~100 ratings each) users' neighbourhoods
carry signal that item-item models (EASE, item-kNN) summarise away, so user-kNN is a
classic blend member there (Dacrema et al. 2019 keep it among the strong simple baselines).
Scoring is two sparse-dense products; a new history is scored against the training users
as it is (fold-in needs no state). implicit has no user-kNN, hence written here.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError, Recommender


class UserKNNRecommender(Recommender):
    """Cosine similarity between users over IDF-weighted binary histories, each user's
    ``neighbors`` nearest kept and raised to ``exponent`` (sharpening, as in RP3/"shrink"
    variants); scores are the neighbours' preferences summed with those weights."""

    name = "userknn"

    def __init__(self, neighbors: int = 50, exponent: float = 1.0, idf: bool = True) -> None:
        self.neighbors = neighbors
        self.exponent = exponent
        self.idf = idf

    def _fit(self, data: InteractionMatrix) -> None:
        if self.neighbors < 1 or self.exponent <= 0:
            raise ModelError("neighbors must be at least 1 and exponent > 0")
        self._prepare()

    def _prepare(self) -> None:
        binary = sp.csr_matrix(self.user_items_, dtype=np.float32, copy=True)
        binary.data = (binary.data > 0).astype(np.float32)
        binary.eliminate_zeros()
        counts = np.asarray(binary.sum(axis=0)).ravel()
        self.idf_ = (
            np.log1p(binary.shape[0] / np.maximum(counts, 1)).astype(np.float32)
            if self.idf
            else np.ones(binary.shape[1], dtype=np.float32)
        )
        self.neighbours_t_ = self._normalised(binary).T.tocsr()
        self.binary_ = binary

    def _normalised(self, histories: sp.csr_matrix) -> sp.csr_matrix:
        weighted = sp.csr_matrix(histories, dtype=np.float32, copy=True)
        weighted.data = (weighted.data > 0).astype(np.float32)
        weighted = sp.csr_matrix(weighted.multiply(self.idf_[None, :]))
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        return sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ weighted

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        if not hasattr(self, "binary_"):
            self._prepare()  # after load: derived from the saved preferences
        similarity = np.asarray((self._normalised(histories) @ self.neighbours_t_).toarray())
        # A trained user is their own nearest neighbour: that adds only to items they have
        # seen (excluded from lists), and keeps a folded-in history's scores the trained ones.
        k = min(self.neighbors, similarity.shape[1])
        if k < similarity.shape[1]:
            cut = np.partition(similarity, -k, axis=1)[:, -k][:, None]
            similarity[similarity < cut] = 0.0
        np.maximum(similarity, 0.0, out=similarity)
        if self.exponent != 1.0:
            similarity **= self.exponent
        return np.asarray(self.binary_.T @ similarity.T, dtype=np.float32).T
