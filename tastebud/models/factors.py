"""Matrix factorisation through implicit: iALS and BPR, on the GPU when CUDA is present."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError, Recommender

if TYPE_CHECKING:
    from implicit.als import AlternatingLeastSquares
    from implicit.cpu.als import AlternatingLeastSquares as CPUAlternatingLeastSquares


def gpu_available() -> bool:
    """Whether implicit was built with CUDA and sees a device (checked in one place)."""
    # lazy: implicit loads on first use, not when the API app is imported
    import implicit.gpu

    try:
        return bool(implicit.gpu.HAS_CUDA)
    except Exception:  # a broken CUDA install must not stop training on the CPU
        warnings.warn("implicit's CUDA check failed; training on the CPU", stacklevel=2)
        return False


class FactorRecommender(Recommender):
    """Shared scoring for factor models: score = user_factors @ item_factors.T."""

    name = "base"

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        factors = np.empty((len(rows), self.item_factors_.shape[1]), dtype=np.float32)
        known = rows >= 0
        if known.any():
            factors[known] = self.user_factors_[rows[known]]
        if (~known).any():
            factors[~known] = self.fold_in(histories[~known])
        return factors @ self.item_factors_.T

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """User factors for user histories (rows over this model's items, values as in
        training), batched: what an anonymous session or a user's newest events stand for,
        without retraining. A training user's own history gives back their trained factors
        (for ALS; BPR, which has no closed form, averages the history's item factors)."""
        self._check_fitted()
        histories = sp.csr_matrix(histories, dtype=np.float32)
        if histories.shape[1] != self.n_items:
            raise ModelError(
                f"histories have {histories.shape[1]} item columns; the model has {self.n_items}"
            )
        return self._fold_in(histories)

    def _fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(self.item_factors_, axis=1) + 1e-9
        chosen = self.item_factors_[columns] / norms[columns][:, None]
        return chosen @ (self.item_factors_ / norms[:, None]).T

    def item_similarity(self, columns: np.ndarray, others: np.ndarray) -> np.ndarray:
        """Cosine of the two sets' factors only (``_similar`` would score every item)."""
        self._check_fitted()
        chosen = self.item_factors_[np.asarray(columns, dtype=np.int64)]
        other = self.item_factors_[np.asarray(others, dtype=np.int64)]
        chosen = chosen / (np.linalg.norm(chosen, axis=1, keepdims=True) + 1e-9)
        other = other / (np.linalg.norm(other, axis=1, keepdims=True) + 1e-9)
        return np.asarray(chosen @ other.T, dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors_": self.user_factors_, "item_factors_": self.item_factors_}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.user_factors_ = state["user_factors_"]
        self.item_factors_ = state["item_factors_"]
        # A loaded model serves fold-ins (implicit's solver): import implicit with the
        # model, off the request path, not in the first request that folds a user in.
        import implicit.cpu.als  # noqa: F401  # lazy: see above

    @staticmethod
    def _to_numpy(array: object) -> np.ndarray:
        return np.asarray(array.to_numpy() if hasattr(array, "to_numpy") else array, np.float32)


class ALSRecommender(FactorRecommender):
    """Implicit ALS (Hu, Koren, Volinsky) through implicit: confidence ``alpha * value`` on
    observed items (implicit's convention), 1 on the rest."""

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        random_state: int = 42,
        use_gpu: bool | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.use_gpu = use_gpu

    def _make(self) -> AlternatingLeastSquares:
        # lazy: implicit loads on first use, not when the API app is imported
        from implicit.als import AlternatingLeastSquares

        use_gpu = gpu_available() if self.use_gpu is None else self.use_gpu
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
            use_gpu=use_gpu,
        )

    def fit_with_callback(
        self, data: InteractionMatrix, callback: Callable[[int, float, float], None] | None
    ) -> ALSRecommender:
        """``fit`` with implicit's per-iteration callback (AutoML uses it to prune)."""
        self._callback = callback
        try:
            return self.fit(data)
        finally:
            self._callback = None

    def _fit(self, data: InteractionMatrix) -> None:
        # implicit parallelises over users itself; a threaded BLAS underneath oversubscribes
        # (implicit checks, and warns, when the model is made).
        with threadpool_limits(1, "blas"):
            model = self._make()
            self.implicit_model_ = model
            model.fit(data.matrix, show_progress=False, callback=getattr(self, "_callback", None))
        self._capture(model)
        # End on an exact user step against the final item factors: implicit's last user
        # step saw the previous item factors (and its conjugate gradient stops after a few
        # steps), so stored user factors would differ from a fold-in of the same history by
        # up to ~10%. After this a user's stored factors and their fold-in agree, and a new
        # event moves a user only by what it adds.
        self.user_factors_ = self._fold_in(data.matrix)

    def _capture(self, model: AlternatingLeastSquares) -> None:
        if hasattr(model, "to_cpu") and not isinstance(model.user_factors, np.ndarray):
            model = model.to_cpu()
        self.user_factors_ = self._to_numpy(model.user_factors)
        self.item_factors_ = self._to_numpy(model.item_factors)

    def _solver(self) -> CPUAlternatingLeastSquares:
        """An implicit CPU model holding this model's item factors, built once per set of
        factors: ``fold_in`` solves through its ``recalculate_user``, the very least
        squares implicit trains with."""
        cached = getattr(self, "fold_in_solver_", None)
        if cached is None or cached[0] is not self.item_factors_:
            # lazy: implicit loads on first use, not when the API app is imported
            from implicit.cpu.als import AlternatingLeastSquares as CPUAlternatingLeastSquares

            with threadpool_limits(1, "blas"):  # implicit checks the BLAS threads when made
                solver = CPUAlternatingLeastSquares(
                    factors=self.item_factors_.shape[1],
                    regularization=self.regularization,
                    alpha=self.alpha,
                    dtype=np.float32,
                    random_state=self.random_state,
                )
            solver.item_factors = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
            solver.YtY  # noqa: B018 -- Y^T Y, computed once (50k x 64: ~20 ms)
            cached = (self.item_factors_, solver)
            self.fold_in_solver_ = cached
        return cached[1]

    def _item_gram(self) -> np.ndarray:
        """Y^T Y of the fold-in solver; calling it early pays that cost at load time (the
        serving snapshot does), not on the first request."""
        return self._solver().YtY

    def _fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """implicit's ``recalculate_user`` for every history at once: the training objective
        exactly (confidence alpha * value on the history's items, 1 elsewhere; the same
        regularization), so a training user's history gives back their trained factors."""
        rows = histories.shape[0]
        if rows == 0:
            return np.zeros((0, self.item_factors_.shape[1]), dtype=np.float32)
        histories = sp.csr_matrix(histories, dtype=np.float32)
        histories.sort_indices()
        factors = self._solver().recalculate_user(np.arange(rows), histories)
        return np.asarray(factors, dtype=np.float32).reshape(rows, -1)


class BPRRecommender(FactorRecommender):
    """Bayesian Personalised Ranking (pairwise SGD) through implicit."""

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 42,
        use_gpu: bool | None = None,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.use_gpu = use_gpu

    def _fit(self, data: InteractionMatrix) -> None:
        # lazy: implicit loads on first use, not when the API app is imported
        from implicit.bpr import BayesianPersonalizedRanking

        use_gpu = gpu_available() if self.use_gpu is None else self.use_gpu
        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                random_state=self.random_state,
                use_gpu=use_gpu,
            )
            model.fit(data.matrix, show_progress=False)
        if hasattr(model, "to_cpu") and use_gpu:
            model = model.to_cpu()
        self.user_factors_ = self._to_numpy(model.user_factors)
        self.item_factors_ = self._to_numpy(model.item_factors)

    def _fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """BPR has no closed-form fold-in: a history's factors are the mean of its items'
        (the item vectors already point where their fans' user vectors do)."""
        counts = np.maximum(np.diff(histories.indptr), 1)[:, None]
        binary = histories.copy()
        binary.data = np.ones_like(binary.data)
        return np.asarray(binary @ self.item_factors_, np.float32) / counts
