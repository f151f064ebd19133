"""A hybrid that blends the normalised scores of several models with weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError, Recommender


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    """Per-user score normalisation so models on different scales can be added.

    ``rank``: 1 - rank/n (robust to outliers); ``minmax``: (s - min)/(max - min) over the
    finite scores; ``zscore``: (s - mean)/std. Non-finite scores (items a component cannot
    score) become the row's minimum, so they neither help nor crash the blend.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    finite = np.isfinite(scores)
    if not finite.all():
        low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
        low = np.where(np.isfinite(low), low, 0.0)
        scores = np.where(finite, scores, low)
    if method == "minmax":
        low = scores.min(axis=1, keepdims=True)
        span = scores.max(axis=1, keepdims=True) - low
        return (scores - low) / np.where(span > 0, span, 1.0)
    if method == "zscore":
        mean = scores.mean(axis=1, keepdims=True)
        std = scores.std(axis=1, keepdims=True)
        return (scores - mean) / np.where(std > 0, std, 1.0)
    if method == "rank":
        order = np.argsort(np.argsort(-scores, axis=1, kind="stable"), axis=1, kind="stable")
        return 1.0 - order.astype(np.float32) / scores.shape[1]
    raise ModelError(f"unknown normalisation {method!r}: use minmax, zscore or rank")


class HybridRecommender(Recommender):
    """score = sum_i weight_i * normalise(score_i); components are any other models.

    ``components`` is a list of ``(model_name, params)`` pairs so the hybrid itself stays a
    plain, serialisable estimator (get_params/set_params work, AutoML can tune it).
    """

    name = "hybrid"

    def __init__(
        self,
        components: list[tuple[str, dict[str, Any]]] | None = None,
        weights: list[float] | None = None,
        normalization: Literal["minmax", "zscore", "rank"] = "zscore",
    ) -> None:
        self.components = components
        self.weights = weights
        self.normalization = normalization

    def _specs(self) -> list[tuple[str, dict[str, Any]]]:
        specs = self.components or [("ease", {}), ("popularity", {})]
        return [(str(name), dict(params)) for name, params in specs]

    def _weights(self) -> np.ndarray:
        specs = self._specs()
        weights = np.ones(len(specs)) if self.weights is None else np.asarray(self.weights, float)
        if len(weights) != len(specs):
            raise ModelError(f"{len(specs)} components but {len(weights)} weights")
        return weights

    def _fit(self, data: InteractionMatrix) -> None:
        weights = self._weights()
        models = []
        for name, params in self._specs():
            model_class = Recommender.registry.get(name)
            if model_class is None or model_class is HybridRecommender:
                raise ModelError(f"unknown hybrid component {name!r}")
            models.append(model_class(**params).fit(data))
        self.models_ = models
        self.weights_ = weights

    @classmethod
    def from_fitted(
        cls, models: list[Recommender], weights: list[float], normalization: str = "zscore"
    ) -> HybridRecommender:
        """A hybrid over models already fitted on the same matrix (no refit)."""
        hybrid = cls(
            components=[(m.name, m.get_params()) for m in models],
            weights=list(weights),
            normalization=normalization,  # type: ignore[arg-type]
        )
        first = models[0]
        for attribute in ("users_", "items_", "user_items_", "seen_", "popularity_"):
            setattr(hybrid, attribute, getattr(first, attribute))
        hybrid.models_ = models
        hybrid.weights_ = np.asarray(weights, float)
        return hybrid

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        total = np.zeros((histories.shape[0], self.n_items), dtype=np.float32)
        for weight, model in zip(self.weights_, self.models_, strict=True):
            if weight == 0:
                continue
            part = model.score_histories(histories, rows)
            total += np.float32(weight) * normalise(part, self.normalization)
        return total

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        total = np.zeros((len(columns), self.n_items), dtype=np.float32)
        for weight, model in zip(self.weights_, self.models_, strict=True):
            if weight:
                total += np.float32(weight) * normalise(model._similar(columns), "minmax")
        return total

    def _save_extra(self, folder: Path) -> list[str]:
        files = []
        for position, model in enumerate(self.models_):
            sub = folder / f"component-{position}"
            model.save(sub)
            files.append(f"component-{position}/model.json")
        (folder / "hybrid.json").write_text(json.dumps({"weights": list(self.weights_)}))
        return [*files, "hybrid.json"]

    def _load_extra(self, folder: Path) -> None:
        self.weights_ = np.asarray(json.loads((folder / "hybrid.json").read_text())["weights"])
        self.models_ = [
            Recommender.load(folder / f"component-{i}") for i in range(len(self.weights_))
        ]

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Recommender:
        components = [(name, dict(p)) for name, p in params.get("components") or []]
        return cls(**{**params, "components": components or None})
