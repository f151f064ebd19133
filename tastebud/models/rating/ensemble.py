"""A linear blend of rating predictors (the Netflix Prize lesson: blends beat any single
model), with weights learned on held-out ratings rather than guessed.

``fit`` holds out a seeded ``blend_fraction`` of the ratings, fits every member (each
``seeds`` times with different seeds, a deterministic one once) on the rest, solves ridge
least squares (``ridge`` x rows: members that differ only by seed are near-collinear) for
an intercept and one weight per member on the held-out predictions, then refits every
member on all the ratings with the same settings. Its state is its members' state,
prefixed, in one npz. Default members: SVD++, biased MF and item kNN on baseline residuals,
chosen on a validation carve of MovieLens' train parts (docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError, Recommender
from tastebud.models.rating.base import RatingRecommender

DEFAULT_MEMBERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("svdpp", {"factors": 20}),
    ("biased-mf", {"factors": 100}),
    ("knn-baseline", {}),
)


class RatingEnsembleRecommender(RatingRecommender):
    """Intercept + weighted sum of member predictions (weights fitted on held-out ratings)."""

    name = "rating-ensemble"

    def __init__(
        self,
        members: list[Any] | tuple[Any, ...] = DEFAULT_MEMBERS,
        seeds: int = 2,
        blend_fraction: float = 0.1,
        ridge: float = 0.01,
        random_state: int = 42,
    ) -> None:
        self.members = members
        self.seeds = seeds
        self.blend_fraction = blend_fraction
        self.ridge = ridge
        self.random_state = random_state

    def _member_specs(self) -> list[tuple[str, dict[str, Any]]]:
        specs = []
        for name, params in self.members:
            model_class = Recommender.registry.get(name)
            if model_class is None or not issubclass(model_class, RatingRecommender):
                raise ModelError(f"ensemble member {name!r} is not a rating model")
            if model_class is RatingEnsembleRecommender:
                raise ModelError("an ensemble cannot hold an ensemble")
            for seed in range(1 if model_class.deterministic else self.seeds):
                specs.append((name, {**params, "random_state": self.random_state + seed}))
        return specs

    def _new_members(self) -> list[RatingRecommender]:
        built = []
        for name, params in self._member_specs():
            member = Recommender.registry[name](**params)
            assert isinstance(member, RatingRecommender)
            built.append(member)
        return built

    def _fit(self, data: InteractionMatrix) -> None:
        if self.seeds < 1 or not 0 < self.blend_fraction < 0.5 or self.ridge < 0:
            raise ModelError("need seeds >= 1, blend_fraction in (0, 0.5) and ridge >= 0")
        coo = data.matrix.tocoo()
        self.rating_range_ = np.array([coo.data.min(), coo.data.max()], dtype=np.float64)
        self.global_mean_ = float(coo.data.mean())
        held = np.random.default_rng(self.random_state).random(coo.nnz) < self.blend_fraction
        if held.sum() < 2 or (~held).sum() < 2:
            raise ModelError("too few ratings to hold some out for the blend weights")
        part = sp.csr_matrix(
            (coo.data[~held], (coo.row[~held], coo.col[~held])), shape=data.matrix.shape
        )
        predictions = []
        for member in self._new_members():
            member.fit(dataclasses.replace(data, matrix=part))
            predictions.append(member._predict_indices(coo.row[held], coo.col[held]))
        design = np.column_stack([np.ones(held.sum()), *predictions])
        # Ridge, not plain least squares: members differing only by seed are near-collinear.
        gram = design.T @ design + self.ridge * len(design) * np.eye(design.shape[1])
        self.weights_ = np.linalg.solve(gram, design.T @ coo.data[held])
        self.members_ = [member.fit(data) for member in self._new_members()]
        if not np.isfinite(self.weights_).all():
            raise ModelError("the blend weights are not finite")

    def _combine(self, parts: list[np.ndarray]) -> np.ndarray:
        blended = self.weights_[0] + sum(
            weight * part for weight, part in zip(self.weights_[1:], parts, strict=True)
        )
        return np.asarray(blended, dtype=np.float32)

    def _predict_indices(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        parts = [member._predict_indices(rows, cols) for member in self.members_]
        low, high = self.rating_range_
        return np.clip(self._combine(parts), low, high)

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        return self._combine([member._score(rows, histories) for member in self.members_])

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        return Recommender.fold_in(self, histories)  # a blend has no one user vector

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        return self.members_[0]._similar(columns)

    def _state(self) -> dict[str, np.ndarray]:
        state = {
            "global_mean_": np.array([self.global_mean_]),
            "rating_range_": self.rating_range_,
            "weights_": self.weights_,
        }
        for index, member in enumerate(self.members_):
            for key, value in member._state().items():
                state[f"member{index}.{key}"] = value
        return state

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.global_mean_ = float(state.pop("global_mean_")[0])
        self.rating_range_ = state.pop("rating_range_")
        self.weights_ = state.pop("weights_")
        self.members_ = self._new_members()
        for index, member in enumerate(self.members_):
            prefix = f"member{index}."
            member._restore({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
            member.rating_range_ = self.rating_range_
            for shared in ("users_", "items_", "user_items_", "seen_", "popularity_"):
                setattr(member, shared, getattr(self, shared))
