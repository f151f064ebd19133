"""AutoML's second phase: blend weights over the best configuration of each family.

Each member is fitted once on the winning trial's matrix and its validation scores are
cached (z-scored), so searching the weights is cheap: coordinate ascent over a grid
(``coordinate_weights``). A blend replaces the single winner only when it beats it by more
than 0.5% NDCG@10.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from tastebud.data.matrix import InteractionMatrix
from tastebud.models import make_model, normalise
from tastebud.models.base import ModelError, Recommender
from tastebud.training.configuration import Configuration
from tastebud.training.holdout import Holdout

# Dense validation scores are cached per member: bounded to this many bytes in all.
BLEND_BYTES = 1 << 30
BLEND_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
MAX_MEMBERS = 5


@dataclass
class BlendFound:
    """What the blend search found: its summary (``SearchResult.blend``) and, when it beats
    the single winner, the hybrid configuration with its validation accuracy."""

    summary: dict[str, Any]
    configuration: Configuration | None = None
    validation_ndcg: float = 0.0
    validation_metrics: dict[str, float] | None = None


def best_of_each_family(
    completed: list[optuna.trial.FrozenTrial],
) -> list[optuna.trial.FrozenTrial]:
    """The best trial of each family, best first, ``MAX_MEMBERS`` at the most."""
    by_family: dict[str, optuna.trial.FrozenTrial] = {}
    for trial in sorted(completed, key=lambda t: -(t.value or -math.inf)):
        by_family.setdefault(trial.params["family"], trial)
    return sorted(by_family.values(), key=lambda t: -(t.value or -math.inf))[:MAX_MEMBERS]


def search_blend(
    base: Configuration,
    base_ndcg: float,
    members: list[optuna.trial.FrozenTrial],
    matrix: InteractionMatrix,
    holdout: Holdout,
    random_state: int,
    deadline: float,
) -> BlendFound | None:
    """Fit ``members`` on ``matrix`` and search their weights on ``holdout``; None when
    fewer than two members could be fitted before ``deadline``."""
    if len(members) < 2:
        return None
    budget_users = BLEND_BYTES // (4 * matrix.shape[1] * len(members))
    holdout = holdout.sample(max(200, int(budget_users)), random_state)
    models: list[Recommender] = []
    scores: list[np.ndarray] = []
    for member in members:
        if time.monotonic() > deadline:
            break
        model = make_model(member.params["family"], **member.user_attrs["params"])
        try:
            model.fit(matrix)
        except (ModelError, MemoryError):
            continue
        models.append(model)
        scores.append(normalise(model.score_users(holdout.users), "zscore"))
    if len(models) < 2:
        return None

    weights, value, metrics, evaluations = coordinate_weights(scores, holdout, deadline)
    found = BlendFound(
        {
            "members": [m.name for m in models],
            "weights": weights,
            "validation_ndcg@10": value,
            "trials": evaluations,
            "method": "coordinate ascent over a weight grid",
        }
    )
    if value > base_ndcg * 1.005:
        active = [(m, w) for m, w in zip(models, weights, strict=True) if w > 1e-3]
        found.configuration = Configuration(
            base.matrix,
            "hybrid",
            {
                "components": [(m.name, m.get_params()) for m, _ in active],
                "weights": [w for _, w in active],
                "normalization": "zscore",
            },
        )
        found.validation_ndcg = value
        found.validation_metrics = metrics
    return found


def coordinate_weights(
    scores: list[np.ndarray], holdout: Holdout, deadline: float, passes: int = 3
) -> tuple[list[float], float, dict[str, float], int]:
    """Blend weights by coordinate ascent on validation NDCG@10: the first member weighs 1,
    each other member's weight in turn takes the best value of ``BLEND_GRID`` with the rest
    held, until a pass changes nothing. Deterministic, and with few members it reaches what
    a sampler does in far fewer evaluations (weights start at 0: the best single model)."""
    weights = [1.0] + [0.0] * (len(scores) - 1)

    def evaluate(candidate: list[float]) -> dict[str, float]:
        total = sum(w * s for w, s in zip(candidate, scores, strict=True) if w)
        return holdout.accuracy_from_scores(total)

    best = evaluate(weights)
    evaluations = 1
    for _ in range(passes):
        changed = False
        for member in range(1, len(scores)):
            for value in BLEND_GRID:
                if value == weights[member] or time.monotonic() > deadline:
                    continue
                candidate = list(weights)
                candidate[member] = value
                metrics = evaluate(candidate)
                evaluations += 1
                if metrics["ndcg@10"] > best["ndcg@10"] + 1e-9:
                    weights, best, changed = candidate, metrics, True
        if not changed:
            break
    return weights, float(best["ndcg@10"]), dict(best), evaluations
