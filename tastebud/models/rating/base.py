"""Rating predictors: models whose score is a predicted explicit rating.

A ``RatingRecommender`` is a ``Recommender`` (it ranks, saves and loads like every model),
fitted on a matrix whose values are the ratings themselves (``training/rating.py`` builds
one from a log's rating column). It adds ``predict``: a rating per (user, item) pair, with
the global mean or a bias alone, flagged, for users or items it never saw, so a request
about a newcomer is answered rather than refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError, Recommender


class TrainingDiverged(ModelError):
    """The loss became NaN or infinite: nothing was learned worth keeping."""


@dataclass(frozen=True)
class RatingPredictions:
    """Predicted ratings with what each one rests on."""

    ratings: np.ndarray  # float32, clipped to the training scale
    known_user: np.ndarray  # bool
    known_item: np.ndarray  # bool


class RatingRecommender(Recommender):
    """Shared state and prediction of the biased models: r = mu + b_u + b_i + <p_u, q_i>."""

    name = "base"
    deterministic = False  # True: the same data gives the same model whatever the seed

    def _fit(self, data: InteractionMatrix) -> None:
        coo = data.matrix.tocoo()
        ratings = coo.data.astype(np.float64)
        if not np.isfinite(ratings).all():
            raise ModelError("ratings must be finite numbers")
        self.rating_range_ = np.array([ratings.min(), ratings.max()], dtype=np.float64)
        self.global_mean_ = float(ratings.mean())
        self._fit_ratings(
            coo.row.astype(np.int64), coo.col.astype(np.int64), ratings, data.matrix.shape
        )
        if not all(np.isfinite(part).all() for part in self._state().values()):
            raise TrainingDiverged(
                f"{self.name} training diverged: parameters became NaN or infinite "
                "(lower the learning rate)"
            )

    def _fit_ratings(
        self, rows: np.ndarray, cols: np.ndarray, ratings: np.ndarray, shape: tuple[int, int]
    ) -> None:
        raise NotImplementedError

    # -- prediction ------------------------------------------------------------------------
    def _user_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The user side of the dot product (SVD++ adds the implicit part)."""
        return self.user_factors_[rows]

    def _predict_indices(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Ratings for index pairs (-1 = unknown): a missing side contributes nothing."""
        known_user = rows >= 0
        known_item = cols >= 0
        prediction = np.full(len(rows), self.global_mean_, dtype=np.float64)
        prediction[known_user] += self.user_bias_[rows[known_user]]
        prediction[known_item] += self.item_bias_[cols[known_item]]
        both = known_user & known_item
        if both.any():
            users = self._user_vectors(rows[both])
            items = self.item_factors_[cols[both]]
            prediction[both] += np.einsum("ij,ij->i", users, items)
        low, high = self.rating_range_
        return np.clip(prediction, low, high).astype(np.float32)

    def predict(self, user_id: str, item_ids: Sequence[str]) -> RatingPredictions:
        """Predicted ratings of ``item_ids`` by one user (global mean + what is known)."""
        self._check_fitted()
        row = self.users_.index_of(user_id)
        cols = self.items_.index(list(item_ids))
        rows = np.full(len(cols), row, dtype=np.int64)
        return RatingPredictions(self._predict_indices(rows, cols), rows >= 0, cols >= 0)

    def predict_pairs(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """Predicted ratings for aligned (user, item) id pairs, e.g. a test set."""
        self._check_fitted()
        if len(user_ids) != len(item_ids):
            raise ModelError(f"{len(user_ids)} users but {len(item_ids)} items")
        return self._predict_indices(
            self.users_.index(list(user_ids)), self.items_.index(list(item_ids))
        )

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        """Predicted ratings over the catalog. A history without a known user (an
        anonymous session) is folded in (``fold_in``) with no user bias."""
        scores = np.tile((self.global_mean_ + self.item_bias_).astype(np.float32), (len(rows), 1))
        vectors = np.zeros((len(rows), self.item_factors_.shape[1]))
        known = rows >= 0
        if known.any():
            vectors[known] = self._user_vectors(rows[known])
            scores[known] += self.user_bias_[rows[known]].astype(np.float32)[:, None]
        if (~known).any():
            vectors[~known] = self._fold_in(histories[~known])
        scores += (vectors @ self.item_factors_.T).astype(np.float32)
        return scores

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """User vectors for histories (rows over this model's items). A session's items
        carry no ratings, so only which items were chosen counts: biased MF takes the
        normalised sum of their factors (as BPR's fold-in), SVD++ its own implicit term.
        Approximate by design: a training user's history does not give back p_u."""
        self._check_fitted()
        histories = sp.csr_matrix(histories, dtype=np.float32)
        if histories.shape[1] != self.n_items:
            raise ModelError(
                f"histories have {histories.shape[1]} item columns; the model has {self.n_items}"
            )
        return self._fold_in(histories)

    def _implicit_items(self) -> np.ndarray:
        return self.item_factors_

    def _fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        chosen = histories.copy()
        chosen.data[:] = 1.0
        counts = np.maximum(np.diff(chosen.indptr), 1)
        return (chosen @ self._implicit_items()) / np.sqrt(counts)[:, None]

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(self.item_factors_, axis=1) + 1e-9
        chosen = self.item_factors_[columns] / norms[columns][:, None]
        return chosen @ (self.item_factors_ / norms[:, None]).T

    # -- persistence -----------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "global_mean_": np.array([self.global_mean_]),
            "rating_range_": self.rating_range_,
            "user_bias_": self.user_bias_,
            "item_bias_": self.item_bias_,
            "user_factors_": self.user_factors_,
            "item_factors_": self.item_factors_,
        }

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.global_mean_ = float(state.pop("global_mean_")[0])
        for name, value in state.items():
            setattr(self, name, value)
