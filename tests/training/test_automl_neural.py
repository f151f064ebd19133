"""The neural families in AutoML: bounded by the budget, skipped (never an error) when
PyTorch is missing or one trial cannot fit."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from interaction_data import clustered_log

from tastebud.data.matrix import build_matrix
from tastebud.models.neural import torch_available
from tastebud.training.automl import AutoML
from tastebud.training.blend import coordinate_weights
from tastebud.training.holdout import Holdout
from tastebud.training.neural_budget import plan_neural
from tastebud.training.pipeline import train
from tastebud.training.space import MIN_EPOCHS, NEURAL_FAMILIES

needs_torch = pytest.mark.skipif(not torch_available(), reason="PyTorch is not installed")


def test_without_pytorch_the_neural_families_are_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails, as uninstalled
    log = clustered_log(n_users=60, n_items=30, per_user=10, seed=4)
    result = train(log, auto=True, budget_seconds=3)
    assert result.fallback is None and result.search is not None
    skipped = result.search.skipped
    assert set(NEURAL_FAMILIES) <= set(skipped)
    assert all("PyTorch is not installed" in skipped[f] for f in NEURAL_FAMILIES)
    assert result.summary(log)["search"]["skipped_families"] == skipped
    assert not {t["family"] for t in result.search.trials} & set(NEURAL_FAMILIES)


@needs_torch
def test_a_family_whose_trial_cannot_fit_the_budget_is_skipped() -> None:
    matrix = build_matrix(clustered_log(n_users=80, n_items=40, per_user=10, seed=5))
    max_epochs, skipped = plan_neural(
        matrix, list(NEURAL_FAMILIES), phase_seconds=1e-6, min_budget=0
    )
    assert max_epochs == {} and set(skipped) == set(NEURAL_FAMILIES)
    assert all("one trial needs" in reason for reason in skipped.values())
    _, skipped = plan_neural(matrix, ["ncf"], phase_seconds=10.0)  # under the 60 s floor
    assert "budget is under 60 s" in skipped["ncf"]
    max_epochs, skipped = plan_neural(matrix, ["mult-vae"], phase_seconds=1_000.0)
    assert skipped == {} and max_epochs["mult-vae"] >= MIN_EPOCHS["mult-vae"]


@needs_torch
def test_the_search_trains_neural_trials_within_their_epoch_bound() -> None:
    log = clustered_log(n_users=120, n_items=50, per_user=12, seed=6)
    automl = AutoML(
        budget_seconds=12, families=("popularity", "mult-vae", "ncf"), neural_min_budget=5
    )
    result = automl.search(log)
    neural = [t for t in result.trials if t["family"] in ("mult-vae", "ncf")]
    assert neural, "the seeded neural trials ran"
    assert all(t["params"]["epochs"] >= 1 for t in neural if t["params"])
    finished = [t for t in neural if t["state"] == "complete"]
    assert finished and all(t["value"] > 0 for t in finished)
    # a neural trial is bounded by the share of the budget it was planned against
    assert max(t["seconds"] for t in finished) < 12


def test_blend_weights_by_coordinate_ascent_find_the_useful_member() -> None:
    log = clustered_log(n_users=80, n_items=40, per_user=10, seed=7)
    automl = AutoML(budget_seconds=1, families=("popularity",))
    train_part, validation, _ = automl._validation_split(log)
    matrix = build_matrix(train_part)
    holdout = Holdout.build(matrix, validation)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(len(holdout), matrix.shape[1]))
    truth = np.zeros_like(noise)
    valid_items = holdout.relevant  # users x items, 1 where held out
    truth[valid_items.nonzero()] = 3.0
    weights, value, metrics, evaluations = coordinate_weights(
        [noise, truth + rng.normal(size=noise.shape)], holdout, deadline=float("inf")
    )
    assert weights[1] > 0 and evaluations > 1
    alone = holdout.accuracy_from_scores(noise)["ndcg@10"]
    assert value > alone and metrics["ndcg@10"] == value
