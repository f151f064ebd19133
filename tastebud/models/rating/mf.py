"""Biased matrix factorisation and SVD++ for explicit ratings, trained by SGD.

Koren, Bell & Volinsky (2009) and Koren (2008): r = mu + b_u + b_i + q_i . (p_u [+
|N(u)|^-1/2 sum_j y_j]). The SGD loops are numba kernels (``kernels.py``), imported on the
first fit only. The learning rate decays geometrically per epoch (``decay``), which lets a
larger first step converge without the late-epoch noise of a constant one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tastebud.models.base import ModelError
from tastebud.models.rating.base import RatingRecommender, TrainingDiverged


class BiasedMFRecommender(RatingRecommender):
    """Biased MF ("SVD" in surprise's naming): global mean, user and item biases, factors."""

    name = "biased-mf"

    def __init__(
        self,
        factors: int = 100,
        epochs: int = 40,
        learning_rate: float = 0.007,
        regularization: float = 0.05,
        bias_learning_rate: float = 0.007,
        bias_regularization: float = 0.02,
        decay: float = 0.96,
        init_std: float = 0.05,
        random_state: int = 42,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.bias_learning_rate = bias_learning_rate
        self.bias_regularization = bias_regularization
        self.decay = decay
        self.init_std = init_std
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.factors < 1 or self.epochs < 1:
            raise ModelError("factors and epochs must be at least 1")
        if min(self.learning_rate, self.bias_learning_rate) <= 0 or not 0 < self.decay <= 1:
            raise ModelError("learning rates must be > 0 and decay in (0, 1]")
        if min(self.regularization, self.bias_regularization, self.init_std) < 0:
            raise ModelError("regularization and init_std must be >= 0")

    def _initial(self, shape: tuple[int, int]) -> np.random.Generator:
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        n_users, n_items = shape
        self.user_bias_ = np.zeros(n_users)
        self.item_bias_ = np.zeros(n_items)
        self.user_factors_ = rng.normal(0.0, self.init_std, (n_users, self.factors))
        self.item_factors_ = rng.normal(0.0, self.init_std, (n_items, self.factors))
        return rng

    def _fit_ratings(
        self, rows: np.ndarray, cols: np.ndarray, ratings: np.ndarray, shape: tuple[int, int]
    ) -> None:
        # lazy: numba compiles the SGD kernel on first use; serving needs numpy only
        from tastebud.models.rating.kernels import biased_mf_epoch

        rng = self._initial(shape)
        self.losses_: list[float] = []
        for epoch in range(self.epochs):
            step = self.decay**epoch
            loss = biased_mf_epoch(
                rows, cols, ratings, rng.permutation(len(ratings)), self.global_mean_,
                self.user_bias_, self.item_bias_, self.user_factors_, self.item_factors_,
                self.learning_rate * step, self.bias_learning_rate * step,
                self.regularization, self.bias_regularization,
            )  # fmt: skip
            self._record(epoch, loss, len(ratings))

    def _record(self, epoch: int, loss: float, count: int) -> None:
        rmse = float(np.sqrt(loss / max(count, 1)))
        if not np.isfinite(rmse):
            raise TrainingDiverged(
                f"{self.name} training diverged at epoch {epoch + 1}: the loss is {rmse} "
                f"(learning_rate {self.learning_rate} is too high for this data)"
            )
        self.losses_.append(rmse)


class SVDppRecommender(BiasedMFRecommender):
    """SVD++: biased MF plus an implicit term from which items each user rated."""

    name = "svdpp"

    def _fit_ratings(
        self, rows: np.ndarray, cols: np.ndarray, ratings: np.ndarray, shape: tuple[int, int]
    ) -> None:
        # lazy: numba compiles the SGD kernel on first use; serving needs numpy only
        from tastebud.models.rating.kernels import svdpp_epoch

        rng = self._initial(shape)
        self.implicit_factors_ = rng.normal(0.0, self.init_std, (shape[1], self.factors))
        by_user = sp.csr_matrix((ratings, (rows, cols)), shape=shape)
        by_user.sort_indices()
        indptr = by_user.indptr.astype(np.int64)
        items = by_user.indices.astype(np.int64)
        values = by_user.data.astype(np.float64)
        self.losses_ = []
        for epoch in range(self.epochs):
            step = self.decay**epoch
            loss = svdpp_epoch(
                indptr, items, values, rng.permutation(shape[0]),
                int(rng.integers(2**31 - 1)), self.global_mean_,
                self.user_bias_, self.item_bias_, self.user_factors_, self.item_factors_,
                self.implicit_factors_, self.learning_rate * step,
                self.bias_learning_rate * step, self.regularization, self.bias_regularization,
            )  # fmt: skip
            self._record(epoch, loss, len(ratings))
        rated = by_user.copy()
        rated.data[:] = 1.0
        counts = np.maximum(np.diff(indptr), 1)
        self.user_implicit_ = (rated @ self.implicit_factors_) / np.sqrt(counts)[:, None]
        if not np.isfinite(self.user_implicit_).all():
            raise TrainingDiverged(f"{self.name} training diverged: implicit factors are NaN")

    def _user_vectors(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors_[rows] + self.user_implicit_[rows]

    def _implicit_items(self) -> np.ndarray:
        return self.implicit_factors_

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **super()._state(),
            "implicit_factors_": self.implicit_factors_,
            "user_implicit_": self.user_implicit_,
        }
