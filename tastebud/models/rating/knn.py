"""Item-based kNN on baseline residuals (Koren 2010's "KNNBaseline"), a rating predictor
that errs differently from the factor models, which is what a blend needs.

r = b_ui + sum_j s_ij (r_uj - b_uj) / sum_j |s_ij| over the ``neighbors`` items most
similar to i among those u rated, with b_ui = mu + b_u + b_i (regularised means, a few
alternating passes) and s_ij the Pearson correlation of the residuals over common raters,
shrunk by n_ij / (n_ij + ``shrinkage``). Only each item's ``keep`` most similar items are
stored (sparse), so the model's size grows with the catalog, not its square.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tastebud.models.base import ModelError, Recommender
from tastebud.models.rating.base import RatingRecommender


def baseline_biases(
    matrix: sp.csr_matrix, mu: float, reg_user: float, reg_item: float, passes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """User and item biases by alternating regularised means of the residuals."""
    coo = matrix.tocoo()
    n_users, n_items = matrix.shape
    user_bias, item_bias = np.zeros(n_users), np.zeros(n_items)
    user_count = np.bincount(coo.row, minlength=n_users)
    item_count = np.bincount(coo.col, minlength=n_items)
    for _ in range(passes):
        residual = coo.data - mu - user_bias[coo.row]
        item_bias = np.bincount(coo.col, residual, n_items) / (reg_item + item_count)
        residual = coo.data - mu - item_bias[coo.col]
        user_bias = np.bincount(coo.row, residual, n_users) / (reg_user + user_count)
    return user_bias, item_bias


class KNNBaselineRecommender(RatingRecommender):
    """Item-item neighbourhood on baseline residuals, with shrunk Pearson similarity."""

    name = "knn-baseline"
    deterministic = True

    def __init__(
        self,
        neighbors: int = 40,
        shrinkage: float = 100.0,
        keep: int = 200,
        reg_user: float = 15.0,
        reg_item: float = 10.0,
        random_state: int = 42,
    ) -> None:
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.keep = keep
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.random_state = random_state  # unused (deterministic); kept for a uniform API

    def _fit_ratings(
        self, rows: np.ndarray, cols: np.ndarray, ratings: np.ndarray, shape: tuple[int, int]
    ) -> None:
        if self.neighbors < 1 or self.keep < self.neighbors or self.shrinkage < 0:
            raise ModelError("need neighbors >= 1, keep >= neighbors and shrinkage >= 0")
        ratings_matrix = sp.csr_matrix((ratings, (rows, cols)), shape=shape)
        self.user_bias_, self.item_bias_ = baseline_biases(
            ratings_matrix, self.global_mean_, self.reg_user, self.reg_item
        )
        residual = ratings - self.global_mean_ - self.user_bias_[rows] - self.item_bias_[cols]
        self.residuals_ = sp.csr_matrix((residual, (rows, cols)), shape=shape)
        self.residuals_.sort_indices()
        self.neighbors_ = self._neighbours(self.residuals_.tocsc())

    def _neighbours(self, residuals: sp.csc_matrix) -> sp.csr_matrix:
        """Each item's ``keep`` most similar items (shrunk Pearson of residuals), as CSR."""
        n_items = residuals.shape[1]
        rated = residuals.copy()
        rated.data[:] = 1.0
        squares = residuals.multiply(residuals).tocsc()
        indptr, indices, values = [0], [], []
        block = max(1, 2_000_000 // max(n_items, 1))
        for start in range(0, n_items, block):
            stop = min(start + block, n_items)
            cross = (residuals[:, start:stop].T @ residuals).toarray()
            common = (rated[:, start:stop].T @ rated).toarray()
            # Sums of squares over the common raters of each pair (Pearson's denominator).
            left = (squares[:, start:stop].T @ rated).toarray()
            right = (rated[:, start:stop].T @ squares).toarray()
            similarity = cross / np.sqrt(np.maximum(left * right, 1e-12))
            similarity *= np.maximum(common - 1, 0) / (np.maximum(common - 1, 0) + self.shrinkage)
            similarity[np.arange(stop - start), np.arange(start, stop)] = 0.0
            for row in similarity:
                top = np.argpartition(-np.abs(row), min(self.keep, n_items - 1))[: self.keep]
                top = top[row[top] > 0]
                indices.extend(top.tolist())
                values.extend(row[top].tolist())
                indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(values, np.float32), np.asarray(indices, np.int64), indptr),
            shape=(n_items, n_items),
        )

    def _neighbourhood(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The kNN term for index pairs (both known)."""
        # lazy: numba compiles the kernel on first use
        from tastebud.models.rating.kernels import knn_terms

        return knn_terms(
            rows, cols, self.residuals_.indptr, self.residuals_.indices,
            self.residuals_.data.astype(np.float64), self.neighbors_.indptr,
            self.neighbors_.indices, self.neighbors_.data.astype(np.float64), self.neighbors,
        )  # fmt: skip

    def _predict_indices(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        known_user, known_item = rows >= 0, cols >= 0
        prediction = np.full(len(rows), self.global_mean_, dtype=np.float64)
        prediction[known_user] += self.user_bias_[rows[known_user]]
        prediction[known_item] += self.item_bias_[cols[known_item]]
        both = known_user & known_item
        if both.any():
            prediction[both] += self._neighbourhood(rows[both], cols[both])
        low, high = self.rating_range_
        return np.clip(prediction, low, high).astype(np.float32)

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        n_items = len(self.item_bias_)
        scores = np.tile((self.global_mean_ + self.item_bias_).astype(np.float32), (len(rows), 1))
        for position, row in enumerate(rows):
            if row >= 0:
                every = np.arange(n_items)
                terms = self._neighbourhood(np.full(n_items, row), every)
                scores[position] += (self.user_bias_[row] + terms).astype(np.float32)
        unknown = rows < 0
        if unknown.any():
            # A session's items carry no ratings: each counts as liked, so an item gains its
            # similarity to them (normalised by the history's size, as in item kNN).
            chosen = sp.csr_matrix(histories[unknown], dtype=np.float32)
            chosen.data[:] = 1.0
            counts = np.maximum(np.diff(chosen.indptr), 1)
            affinity = (chosen @ self.neighbors_.T).toarray() / np.sqrt(counts)[:, None]
            scores[unknown] += affinity.astype(np.float32)
        return scores

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        return Recommender.fold_in(self, histories)  # no user vector to give

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        return self.neighbors_[columns].toarray()

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "global_mean_": np.array([self.global_mean_]),
            "rating_range_": self.rating_range_,
            "user_bias_": self.user_bias_,
            "item_bias_": self.item_bias_,
            "residuals_.data": self.residuals_.data,
            "residuals_.indices": self.residuals_.indices,
            "residuals_.indptr": self.residuals_.indptr,
            "neighbors_.data": self.neighbors_.data,
            "neighbors_.indices": self.neighbors_.indices,
            "neighbors_.indptr": self.neighbors_.indptr,
        }

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.global_mean_ = float(state["global_mean_"][0])
        self.rating_range_ = state["rating_range_"]
        self.user_bias_ = state["user_bias_"]
        self.item_bias_ = state["item_bias_"]
        n_users, n_items = len(self.user_bias_), len(self.item_bias_)
        self.residuals_ = sp.csr_matrix(
            (state["residuals_.data"], state["residuals_.indices"], state["residuals_.indptr"]),
            shape=(n_users, n_items),
        )
        self.neighbors_ = sp.csr_matrix(
            (state["neighbors_.data"], state["neighbors_.indices"], state["neighbors_.indptr"]),
            shape=(n_items, n_items),
        )
