"""AutoML: choose the model, its hyperparameters, the event weighting and a blend.

The search never sees the data a model will be judged on: it carves a validation split
out of the training log (each user's most recent ``validation_fraction`` of interactions),
fits candidates on the rest and scores NDCG@10 on the validation users. Optuna's TPE
sampler proposes configurations; a median pruner stops trials that fall behind, using
ALS's per-iteration callback and, for every model, the validation users scored in chunks.

Two phases share the time budget: (1) single models with their matrix options, seeded with
sound defaults so even a tight budget tries every family; (2) blend weights over the best
configuration of each family, fitted on the best trial's matrix, searched on cached
validation scores (fast; ``training.blend``). The winner is refitted on the whole training
log.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.config import EventTypeSpec, default_event_types
from tastebud.data.interactions import InteractionLog, InteractionsError
from tastebud.data.matrix import InteractionMatrix, MatrixOptions, build_matrix
from tastebud.models import make_model
from tastebud.models.base import ModelError
from tastebud.models.factors import ALSRecommender
from tastebud.observability import get_logger
from tastebud.training.blend import best_of_each_family, search_blend
from tastebud.training.configuration import Configuration
from tastebud.training.holdout import Holdout, positive_rows, validation_split
from tastebud.training.neural_budget import MIN_BUDGET_SECONDS, plan_neural
from tastebud.training.pruning import als_pruning, score_in_chunks, stop_before
from tastebud.training.space import (
    FAMILIES,
    NEURAL_FAMILIES,
    SEEDS,
    neural_seeds,
    suggest_matrix,
    suggest_model,
)

log = get_logger(__name__)

DEFAULT_BUDGET_SECONDS = 300.0
# Ratio of the budget given to the single-model phase; the rest goes to the blend.
MODEL_PHASE_SHARE = 0.8


TRIAL_ERRORS = (ModelError, InteractionsError, np.linalg.LinAlgError, MemoryError)


class BudgetTooSmall(ValueError):
    """Not even one trial fits into the budget."""


class SearchFailed(ValueError):
    """Every trial that ran failed (each one's error is named)."""


@dataclass
class SearchResult:
    configuration: Configuration
    validation_ndcg: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    blend: dict[str, Any] | None = None
    budget_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    validation: dict[str, Any] = field(default_factory=dict)
    # Accuracy at 10 of the chosen configuration on the validation users.
    validation_metrics: dict[str, float] = field(default_factory=dict)
    # Families left out of the search, each with its reason (no PyTorch, a trial too long).
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        best_so_far, curve = -math.inf, []
        for trial in self.trials:
            # A pruned trial carries its last partial value; only finished ones count.
            if trial["value"] is not None and trial["state"] == "complete":
                best_so_far = max(best_so_far, trial["value"])
            curve.append(None if best_so_far == -math.inf else best_so_far)
        return {
            "best": self.configuration.to_dict(),
            "validation_ndcg@10": self.validation_ndcg,
            "validation_metrics": self.validation_metrics,
            "trials": self.trials,
            "curve_best_so_far": curve,
            "blend": self.blend,
            "budget_seconds": self.budget_seconds,
            "elapsed_seconds": self.elapsed_seconds,
            "validation": self.validation,
            "skipped_families": self.skipped,
        }


class AutoML:
    """Search configurations on a validation split of ``train`` within ``budget_seconds``."""

    def __init__(
        self,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
        families: tuple[str, ...] = FAMILIES,
        validation_fraction: float = 0.2,
        random_state: int = 42,
        event_types: dict[str, EventTypeSpec] | None = None,
        max_ease_items: int = 15_000,
        max_validation_users: int = 5_000,
        on_trial: Callable[[dict[str, Any]], None] | None = None,
        neural_min_budget: float = MIN_BUDGET_SECONDS,
    ) -> None:
        self.budget_seconds = budget_seconds
        self.families = families
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.event_types = event_types or default_event_types()
        self.max_ease_items = max_ease_items
        self.max_validation_users = max_validation_users
        self.on_trial = on_trial
        self.neural_min_budget = neural_min_budget

    # -- data ----------------------------------------------------------------------------
    def _validation_split(
        self, data: InteractionLog
    ) -> tuple[InteractionLog, pa.Table, dict[str, Any]]:
        """The part to fit on, the validation part and how it was split
        (``training.holdout.validation_split``)."""
        return validation_split(data, self.validation_fraction, self.random_state)

    def _check_holdout(self) -> None:
        """Refuse, with the true cause, a validation part no trial could be judged on."""
        holdout = self._holdout(self._matrix({}))
        if len(holdout):
            return
        positives = positive_rows(self._valid, self.event_types).num_rows
        if positives == 0:
            cause = (
                f"none of the {self._valid.num_rows:,} held-out interactions is a positive "
                "signal (their ratings are below 'liked' or their event types weigh <= 0)"
            )
        else:
            cause = (
                f"none of the {positives:,} positive held-out interactions is on an item "
                "seen in the rest of the data"
            )
        raise InteractionsError(f"no validation set to search on: {cause}")

    def _matrix(self, options: dict[str, Any]) -> InteractionMatrix:
        key = MatrixOptions(**options).model_dump_json()
        if key not in self._matrices:
            if len(self._matrices) > 8:
                self._matrices.pop(next(iter(self._matrices)))
            self._matrices[key] = build_matrix(
                self._train, MatrixOptions(**options), self.event_types
            )
        return self._matrices[key]

    def _holdout(self, matrix: InteractionMatrix) -> Holdout:
        key = matrix.options.model_dump_json()
        if key not in self._holdouts:
            holdout = Holdout.build(matrix, self._valid, self.event_types)
            self._holdouts[key] = holdout.sample(self.max_validation_users, self.random_state)
        return self._holdouts[key]

    # -- search --------------------------------------------------------------------------
    def search(self, data: InteractionLog) -> SearchResult:
        started = time.monotonic()
        deadline = started + self.budget_seconds
        self._train, self._valid, validation = self._validation_split(data)
        self._matrices: dict[str, InteractionMatrix] = {}
        self._holdouts: dict[str, Holdout] = {}
        self._check_holdout()
        values = self._train.table.column("value")
        has_ratings = values.null_count < len(values)
        has_time = self._train.table.column("timestamp").null_count < self._train.table.num_rows
        families, max_epochs, skipped = self._families(
            self.budget_seconds * MODEL_PHASE_SHARE - (time.monotonic() - started)
        )
        if not families:
            reasons = "; ".join(f"{f}: {why}" for f, why in skipped.items())
            raise SearchFailed(f"no model family left to search ({reasons})")
        study = self._study(families, max_epochs, has_ratings)
        trials: list[dict[str, Any]] = []

        def objective(trial: optuna.Trial) -> float:
            return self._trial(trial, families, max_epochs, has_ratings, has_time, deadline)

        model_deadline = started + self.budget_seconds * MODEL_PHASE_SHARE
        study.optimize(
            objective,
            timeout=max(model_deadline - time.monotonic(), 0.001),
            callbacks=[self._recorder(trials), stop_before(model_deadline)],
            catch=TRIAL_ERRORS,
            gc_after_trial=True,
        )
        completed = self._completed(study)
        best = max(completed, key=lambda t: t.value or -math.inf)
        configuration = Configuration(
            best.user_attrs["matrix"], best.params["family"], best.user_attrs["params"]
        )
        result = SearchResult(
            configuration,
            float(best.value),
            trials,
            budget_seconds=self.budget_seconds,
            validation={**validation,
                        "users": len(self._holdout(self._matrix(configuration.matrix)))},
            validation_metrics=dict(best.user_attrs.get("metrics", {})),
            skipped=skipped,
        )  # fmt: skip
        if time.monotonic() < deadline:
            self._blend(result, completed, deadline)
        result.elapsed_seconds = time.monotonic() - started
        return result

    def _study(
        self, families: list[str], max_epochs: dict[str, int], has_ratings: bool
    ) -> optuna.Study:
        """A TPE study with a median pruner, seeded with sound defaults of every family so
        even a tight budget tries each one first."""
        with warnings.catch_warnings():
            # multivariate/group TPE are marked experimental; they model conditional spaces.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=self.random_state, multivariate=True, group=True
            )
        pruner = optuna.pruners.MedianPruner(n_startup_trials=6, n_warmup_steps=0)
        # Failed trials are recorded in the result; Optuna would also log each one with its
        # traceback at WARNING, which is noise to a user of `train --auto`.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
        for seed in SEEDS:
            if seed["family"] in families:
                params = dict(seed)
                if not has_ratings:
                    params.pop("unliked_rating_weight", None)
                study.enqueue_trial(params, skip_if_exists=True)
        for params in neural_seeds(max_epochs):
            if not has_ratings:
                params.pop("unliked_rating_weight", None)
            study.enqueue_trial(params, skip_if_exists=True)
        return study

    def _trial(
        self,
        trial: optuna.Trial,
        families: list[str],
        max_epochs: dict[str, int],
        has_ratings: bool,
        has_time: bool,
        deadline: float,
    ) -> float:
        """One trial: a suggested family, matrix and parameters, fitted and scored (its
        validation NDCG@10)."""
        family = trial.suggest_categorical("family", families)
        options = suggest_matrix(trial, family, has_ratings, has_time)
        params = suggest_model(trial, family, max_epochs)
        trial.set_user_attr("matrix", options)
        trial.set_user_attr("params", params)
        trial_start = time.monotonic()
        try:
            matrix = self._matrix(options)
            holdout = self._holdout(matrix)
            if len(holdout) == 0:
                raise InteractionsError(
                    "these matrix options leave no held-out user with a relevant item"
                )
            model = make_model(family, **params)
            if isinstance(model, ALSRecommender):
                pruning = als_pruning(trial, model, holdout, deadline)
                model.fit_with_callback(matrix, pruning)
            else:
                model.fit(matrix)
        except TRIAL_ERRORS as error:
            # Recorded with the trial (and counted if every trial fails); Optuna's own
            # report of it, a traceback, is silenced in _study.
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise
        metrics = score_in_chunks(trial, model, holdout)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("seconds", time.monotonic() - trial_start)
        return metrics["ndcg@10"]

    def _recorder(
        self, trials: list[dict[str, Any]]
    ) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
        """A study callback that appends each finished trial to ``trials``, logs it and
        hands it to ``on_trial``."""

        def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            entry = {
                "number": trial.number,
                "state": trial.state.name.lower(),
                "value": trial.value,
                "family": trial.params.get("family"),
                "matrix": trial.user_attrs.get("matrix"),
                "params": trial.user_attrs.get("params"),
                "seconds": round(trial.duration.total_seconds(), 3) if trial.duration else None,
            }
            if trial.user_attrs.get("error"):
                entry["error"] = trial.user_attrs["error"]
            trials.append(entry)
            log.info("automl.trial", **{k: v for k, v in entry.items() if k != "params"})
            if self.on_trial:
                self.on_trial(entry)

        return record

    def _completed(self, study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
        """The trials that finished; refuses a search where none did, naming why."""
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
        if not completed and failed:
            errors = sorted({t.user_attrs.get("error", "unknown error") for t in failed})
            raise SearchFailed(
                f"all {len(failed)} AutoML trials that ran failed: {'; '.join(errors[:3])}"
            )
        if not completed:
            raise BudgetTooSmall(
                f"no trial finished within the budget of {self.budget_seconds:.0f}s; give a "
                "larger --budget, or train without --auto to fit the default configuration"
            )
        return completed

    def _families(self, phase_seconds: float) -> tuple[list[str], dict[str, int], dict[str, str]]:
        """The families this search tries, the most epochs of each neural one, and why any
        asked-for family is left out."""
        n_items = pc.count_distinct(self._train.table.column("item_id")).as_py()
        skipped: dict[str, str] = {}
        families = list(self.families)
        if "ease" in families and n_items > self.max_ease_items:
            # EASE's dense item x item inverse is too big above the cap: leave it out.
            families.remove("ease")
            skipped["ease"] = f"{n_items:,} items, above the cap of {self.max_ease_items:,}"
        neural = [f for f in families if f in NEURAL_FAMILIES]
        max_epochs, too_costly = plan_neural(
            self._matrix({}) if neural else None,
            neural,
            phase_seconds,
            self.random_state,
            self.neural_min_budget,
        )
        skipped.update(too_costly)
        families = [f for f in families if f not in too_costly]
        for family, reason in skipped.items():
            log.info("automl.family_skipped", family=family, reason=reason)
        return families, max_epochs, skipped

    def _blend(
        self, result: SearchResult, completed: list[optuna.trial.FrozenTrial], deadline: float
    ) -> None:
        """Search blend weights over the best configuration of each family; the blend
        replaces the winner when it beats it (``training.blend``)."""
        matrix = self._matrix(result.configuration.matrix)
        members = best_of_each_family(completed)
        found = search_blend(
            result.configuration,
            result.validation_ndcg,
            members,
            matrix,
            self._holdout(matrix),
            self.random_state,
            deadline,
        )
        if found is None:
            return
        result.blend = found.summary
        if found.configuration is not None:
            result.configuration = found.configuration
            result.validation_ndcg = found.validation_ndcg
            result.validation_metrics = found.validation_metrics or {}
