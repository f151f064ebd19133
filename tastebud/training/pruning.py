"""How AutoML stops early: a trial that falls behind the median (ALS reports every few
iterations, every model as its validation users are scored in chunks), and the single-model
phase before a typical trial would overrun its deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import optuna

from tastebud.models.base import Recommender
from tastebud.models.factors import ALSRecommender
from tastebud.training.holdout import Holdout

EVAL_CHUNKS = 4


def als_pruning(
    trial: optuna.Trial, model: ALSRecommender, holdout: Holdout, deadline: float
) -> Callable[[int, float, float], None]:
    """Report validation NDCG every few ALS iterations and stop losing trials early."""
    every = max(model.iterations // 3, 1)
    sample = slice(0, max(len(holdout) // EVAL_CHUNKS, 1))

    def callback(iteration: int, elapsed: float, loss: float) -> None:
        if time.monotonic() > deadline:
            raise optuna.TrialPruned("budget exhausted")
        if (iteration + 1) % every or iteration + 1 >= model.iterations:
            return
        model._capture(model.implicit_model_)
        trial.report(holdout.ndcg(model, 10, sample), iteration)
        if trial.should_prune():
            raise optuna.TrialPruned()

    return callback


def stop_before(
    deadline: float,
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """Stop the single-model phase when a typical trial (the median of those that ran)
    would end after its deadline: Optuna's timeout only stops before a trial starts, so on
    a slow machine the last trial ate into the blend phase (seen: 40 s over a 300 s budget
    and no blend)."""

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seconds = [t.duration.total_seconds() for t in study.trials if t.duration is not None]
        if seconds and time.monotonic() + float(np.median(seconds)) > deadline:
            study.stop()

    return callback


def score_in_chunks(trial: optuna.Trial, model: Recommender, holdout: Holdout) -> dict[str, float]:
    """Accuracy at 10 on the validation users, scored in ``EVAL_CHUNKS`` parts with the
    running NDCG reported after each, so the pruner can stop a trial that falls behind."""
    users = len(holdout)
    bounds = np.linspace(0, users, EVAL_CHUNKS + 1).astype(int)
    sums: dict[str, float] = {}
    for step in range(EVAL_CHUNKS):
        part = slice(bounds[step], bounds[step + 1])
        size = bounds[step + 1] - bounds[step]
        for name, value in holdout.accuracy(model, 10, part).items():
            sums[name] = sums.get(name, 0.0) + value * size
        running = sums.get("ndcg@10", 0.0) / max(bounds[step + 1], 1)
        trial.report(running, 100 + step)
        if step < EVAL_CHUNKS - 1 and trial.should_prune():
            raise optuna.TrialPruned()
    return {name: total / users for name, total in sums.items()}
