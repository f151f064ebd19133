"""A whole offline evaluation: split, train each model on the train part, rank, judge.

Every model is judged the same way: full ranking over the training catalog, training items
excluded, relevance from the held-out part (ratings >= ``min_rating`` when given, else
liked ratings and positive event types). ``strong-generalization`` holds out whole users:
their earlier interactions are folded in at recommendation time, never trained on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from tastebud.config import EventTypeSpec, default_event_types
from tastebud.data.interactions import InteractionLog, InteractionsError, from_table
from tastebud.data.matrix import MatrixOptions
from tastebud.evaluation import (
    EvaluationReport,
    evaluate_rankings,
    make_splitter,
    relevance_matrix,
)
from tastebud.evaluation.report import summarize_interactions
from tastebud.models.base import Recommender
from tastebud.training.configuration import Configuration
from tastebud.training.holdout import Holdout, positive_rows
from tastebud.training.pipeline import train

BASELINES: dict[str, Configuration] = {
    "popularity": Configuration({}, "popularity", {}),
    "itemknn": Configuration({"transform": "binary"}, "itemknn", {}),
    "userknn": Configuration({"transform": "binary"}, "userknn", {}),
    "als": Configuration({"transform": "binary"}, "als", {}),
    "bpr": Configuration({"transform": "binary"}, "bpr", {}),
    "ease": Configuration({"transform": "binary"}, "ease", {}),
    # The neural models (issue 23; tastebud[neural]) at their defaults.
    "mult-vae": Configuration({"transform": "binary"}, "mult-vae", {}),
    "two-tower": Configuration({"transform": "binary"}, "two-tower", {}),
    "ncf": Configuration({"transform": "binary"}, "ncf", {}),
    # Implicit ALS trained by Spark MLlib (issue 22; tastebud[spark] and Java).
    "mllib-als": Configuration({"transform": "binary"}, "mllib-als", {}),
}
EXTRA_MODELS = ("tastebud", "auto")  # the default configuration; AutoML on the train part
DEFAULT_MODELS = ("popularity", "itemknn", "als", "ease", "tastebud")


def _fit(
    spec: str,
    log: InteractionLog,
    event_types: dict[str, EventTypeSpec],
    budget_seconds: float,
    random_state: int,
) -> Recommender:
    if spec == "auto":
        return train(
            log,
            auto=True,
            budget_seconds=budget_seconds,
            event_types=event_types,
            random_state=random_state,
        ).model
    if spec == "tastebud":
        return train(log, event_types=event_types).model
    configuration = BASELINES[spec]
    # Baselines see plain binary interactions, as the libraries they stand for do.
    matrix_options = {**MatrixOptions().model_dump(), "liked_rating": 0.0,
                      "unliked_rating_weight": 1.0, **configuration.matrix}  # fmt: skip
    return train(
        log,
        event_types=event_types,
        configuration=Configuration(matrix_options, configuration.model, configuration.params),
    ).model


def run_evaluation(
    log: InteractionLog,
    protocol: str,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    ks: Sequence[int] = (5, 10, 20),
    min_rating: float | None = None,
    split_options: dict[str, Any] | None = None,
    event_types: dict[str, EventTypeSpec] | None = None,
    budget_seconds: float = 300.0,
    random_state: int = 42,
    on_model: Callable[[str, dict[str, float]], None] | None = None,
) -> EvaluationReport:
    event_types = event_types or default_event_types()
    unknown = [name for name in models if name not in BASELINES and name not in EXTRA_MODELS]
    if unknown:  # before any model is fitted, not halfway through
        raise InteractionsError(
            f"unknown model(s) {', '.join(unknown)}: use {', '.join([*BASELINES, *EXTRA_MODELS])}"
        )
    split = make_splitter(protocol, **(split_options or {}))(log.table)
    if split.train.num_rows == 0 or split.test.num_rows == 0:
        raise InteractionsError(f"the {protocol} split left an empty train or test part")
    train_log = from_table(split.train, f"{log.snapshot}:{protocol}:train")
    report = EvaluationReport(
        protocol=protocol,
        options={**dict(split.options), "min_rating": min_rating, "ks": list(ks)},
        dataset={**summarize_interactions(log.table), **split.summary(), "dropped": log.dropped},
        main_k=10 if 10 in ks else max(ks),
    )
    for name in models:
        started = time.monotonic()
        model = _fit(name, train_log, event_types, budget_seconds, random_state)
        fit_seconds = time.monotonic() - started
        started = time.monotonic()
        if split.fold_in.num_rows:
            metrics = _fold_in_metrics(
                model, split.fold_in, split.test, ks, min_rating, event_types
            )
        else:
            holdout = Holdout.build(model, split.test, event_types, min_rating=min_rating)
            if len(holdout) == 0:
                raise InteractionsError("no test user has a relevant item known to training")
            metrics = holdout.full_metrics(model, ks)
        report.add_model(
            name, metrics, {"fit_seconds": fit_seconds, "rank_seconds": time.monotonic() - started}
        )
        if on_model:
            on_model(name, metrics)
    return report


def _fold_in_metrics(
    model: Recommender,
    fold_in: pa.Table,
    test: pa.Table,
    ks: Sequence[int],
    min_rating: float | None,
    event_types: dict[str, EventTypeSpec],
) -> dict[str, float]:
    """Held-out users: recommend from their fold-in history, judge on their test part."""
    positives = positive_rows(test, event_types, min_rating=min_rating)
    user_ids = sorted(set(positives.column("user_id").to_pylist()))
    relevance = relevance_matrix(positives, user_ids, model.items_)
    history_table = positive_rows(fold_in, event_types)
    by_user: dict[str, list[str]] = {user: [] for user in user_ids}
    for user, item in zip(
        history_table.column("user_id").to_pylist(),
        history_table.column("item_id").to_pylist(),
        strict=True,
    ):
        if user in by_user:
            by_user[user].append(item)
    keep = np.flatnonzero(np.diff(relevance.matrix.indptr) > 0)
    users = [user_ids[i] for i in keep]
    if not users:
        raise InteractionsError("no held-out user has a relevant test item known to training")
    histories = model._history_matrix([by_user[user] for user in users])
    ranked, _ = model.recommend_indices(
        np.full(len(users), -1), max(ks), exclude_seen=True, histories=histories
    )
    popularity = np.asarray(model.user_items_.astype(bool).sum(axis=0)).ravel()
    return evaluate_rankings(
        ranked,
        relevance.matrix[keep],
        ks=ks,
        item_popularity=popularity,
        n_train_users=model.user_items_.shape[0],
        train_matrix=model.user_items_,
    )
