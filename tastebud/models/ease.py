"""EASE (Steck 2019): a closed-form item-item model, numpy/scipy only."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError, Recommender


class CatalogTooLarge(ModelError):
    """EASE's dense item x item inverse would not fit in the memory allowed."""


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix through Cholesky (LAPACK potrf +
    potri, in place): about half the work of a general LU inverse."""
    factor, info = scipy.linalg.lapack.dpotrf(matrix, lower=False, overwrite_a=True)
    if info == 0:
        inverse, info = scipy.linalg.lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError(f"EASE could not invert the Gram matrix (LAPACK info={info}); raise l2")
    upper = np.triu(inverse)
    return upper + np.triu(inverse, 1).T


class EASERecommender(Recommender):
    """B = I - P / diag(P) with P = (X^T X + Λ)^-1; scores = history @ B.

    Λ = l2 I, plus ``dropout / (1 - dropout)`` times the diagonal of X^T X: the closed form
    of EDLAE (Steck 2020, "Autoencoders that don't overfit towards the identity"), which
    regularizes each item in proportion to its popularity, as dropout of the input would;
    ``dropout = 0`` is plain EASE.

    The Gram matrix and its inverse are dense (items^2 float64, twice): above
    ``max_items`` the model either refuses (``on_large="error"``) or approximates by
    keeping the ``max_items`` most popular items (the rest are never recommended).
    """

    name = "ease"

    def __init__(
        self,
        l2: float = 200.0,
        max_items: int = 15_000,
        on_large: str = "approximate",
        dropout: float = 0.0,
    ) -> None:
        self.l2 = l2
        self.max_items = max_items
        self.on_large = on_large
        self.dropout = dropout

    @staticmethod
    def memory_bytes(n_items: int) -> int:
        """Peak memory of a fit: the Gram matrix, its inverse and B (float64)."""
        return 3 * 8 * n_items * n_items

    def _fit(self, data: InteractionMatrix) -> None:
        matrix = data.matrix
        n_items = matrix.shape[1]
        kept = np.arange(n_items)
        if n_items > self.max_items:
            need = self.memory_bytes(n_items) / 2**30
            if self.on_large != "approximate":
                raise CatalogTooLarge(
                    f"EASE on {n_items} items needs ~{need:.1f} GiB; the limit is "
                    f"max_items={self.max_items} (raise it, or use on_large='approximate')"
                )
            warnings.warn(
                f"EASE: {n_items} items exceed max_items={self.max_items}; keeping the "
                f"{self.max_items} most popular",
                stacklevel=2,
            )
            kept = np.sort(np.argsort(-self.popularity_, kind="stable")[: self.max_items])
            matrix = matrix[:, kept]
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {self.dropout}")
        gram = np.asarray((matrix.T @ matrix).toarray(), dtype=np.float64)
        diagonal = np.diag_indices_from(gram)
        gram[diagonal] += self.l2 + self.dropout / (1.0 - self.dropout) * gram[diagonal]
        inverse = _spd_inverse(gram)
        weights = -inverse / np.diag(inverse)
        np.fill_diagonal(weights, 0.0)
        self.kept_items_ = kept
        self.weights_ = weights.astype(np.float32)

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        part = histories[:, self.kept_items_] if len(self.kept_items_) < self.n_items else histories
        scores = np.asarray(part @ self.weights_, dtype=np.float32)
        if len(self.kept_items_) == self.n_items:
            return scores
        full = np.full((histories.shape[0], self.n_items), -np.inf, dtype=np.float32)
        full[:, self.kept_items_] = scores
        return full

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        position = np.full(self.n_items, -1)
        position[self.kept_items_] = np.arange(len(self.kept_items_))
        result = np.zeros((len(columns), self.n_items), dtype=np.float32)
        inside = position[columns] >= 0
        result[np.ix_(inside, self.kept_items_)] = self.weights_[position[columns[inside]]]
        return result

    def item_similarity(self, columns: np.ndarray, others: np.ndarray) -> np.ndarray:
        """The pairs only, gathered from the weights (no dense full rows); 0 for an item
        outside the kept catalog, as ``_similar`` gives."""
        self._check_fitted()
        position = np.full(self.n_items, -1)
        position[self.kept_items_] = np.arange(len(self.kept_items_))
        rows = position[np.asarray(columns, dtype=np.int64)]
        cols = position[np.asarray(others, dtype=np.int64)]
        result = np.zeros((len(rows), len(cols)), dtype=np.float32)
        inside_rows, inside_cols = rows >= 0, cols >= 0
        result[np.ix_(inside_rows, inside_cols)] = self.weights_[
            np.ix_(rows[inside_rows], cols[inside_cols])
        ]
        return result

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights_": self.weights_, "kept_items_": self.kept_items_}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.weights_ = state["weights_"]
        self.kept_items_ = state["kept_items_"]
