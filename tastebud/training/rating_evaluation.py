"""``evaluate --protocol ratings``: RMSE/MAE of rating predictors on one seeded random split.

Every model is tuned blind to the test part: a grid point is chosen by validation RMSE on
a seeded 10% carved out of the train part, then the model is refitted on the whole train
part with it and judged once on the test part. scikit-surprise's SVD and SVD++ run as
baselines in the same split when that package is installed (``pip install
scikit-surprise``); asked for without it, they are refused with that command.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from tastebud.data.interactions import InteractionLog, InteractionsError
from tastebud.evaluation.ratings import RatingReport, random_rating_split, rating_metrics
from tastebud.models import make_model
from tastebud.models.base import ModelError
from tastebud.models.rating import RATING_MODELS, RatingRecommender
from tastebud.training.rating import rating_rows, ratings_matrix

VALIDATION_FRACTION = 0.1
BASELINES = ("surprise-svd", "surprise-svdpp", "global-mean")
RATING_EVALUATION_MODELS = (*RATING_MODELS, *BASELINES)
DEFAULT_EVALUATION_MODELS = ("global-mean", "biased-mf", "svdpp", "rating-ensemble")

# Small grids, chosen on validation RMSE; the ensemble's members run at their defaults (its
# blend weights are learned on its own held-out part of the training ratings).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "biased-mf": [{"factors": f, "regularization": r} for f in (50, 150) for r in (0.04, 0.08)],
    "svdpp": [
        {"factors": 20},
        {"factors": 50, "regularization": 0.08},
        {"factors": 10, "regularization": 0.05, "epochs": 60, "learning_rate": 0.005},
    ],
    "knn-baseline": [{"neighbors": 40, "shrinkage": 100.0}, {"neighbors": 60, "shrinkage": 50.0}],
}


def predict_with(name: str, params: dict[str, Any], train: pa.Table, test: pa.Table) -> np.ndarray:
    """Fit ``name`` on ``train`` rating rows and predict the ``test`` rows' ratings."""
    if name == "global-mean":
        mean = float(np.mean(train.column("value").to_numpy(zero_copy_only=False)))
        return np.full(test.num_rows, mean)
    if name.startswith("surprise-"):
        return _surprise_predict(name, train, test)
    model = make_model(name, **params).fit(ratings_matrix(InteractionLog(train, "train")))
    assert isinstance(model, RatingRecommender)
    return model.predict_pairs(
        test.column("user_id").to_pylist(), test.column("item_id").to_pylist()
    )


def _surprise_predict(name: str, train: pa.Table, test: pa.Table) -> np.ndarray:
    """scikit-surprise's SVD / SVDpp with its default parameters, on the same rows."""
    try:
        # lazy: an optional baseline (pip install scikit-surprise), not a dependency
        import surprise
    except ImportError:
        raise ModelError(f"{name} needs scikit-surprise: pip install scikit-surprise") from None
    values = train.column("value").to_numpy(zero_copy_only=False)
    reader = surprise.Reader(
        line_format="user item rating",
        sep="\t",
        rating_scale=(float(values.min()), float(values.max())),
    )
    with tempfile.TemporaryDirectory(prefix="tastebud-surprise-") as scratch:
        # Through a file: load_from_df would need pandas, which tastebud does not install.
        path = Path(scratch) / "train.tsv"
        pacsv.write_csv(
            train.select(["user_id", "item_id", "value"]),
            path,
            pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"),
        )
        trainset = surprise.Dataset.load_from_file(str(path), reader).build_full_trainset()
    algorithm = (
        surprise.SVD(random_state=0) if name == "surprise-svd" else surprise.SVDpp(random_state=0)
    )
    algorithm.fit(trainset)
    users = test.column("user_id").to_pylist()
    items = test.column("item_id").to_pylist()
    return np.array([algorithm.predict(u, i).est for u, i in zip(users, items, strict=True)])


def tune(
    name: str, train: pa.Table, random_state: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The grid point with the lowest validation RMSE (a seeded 10% of ``train``)."""
    grid = GRIDS.get(name, [{}])
    if len(grid) == 1:
        return dict(grid[0]), []
    split = random_rating_split(train, VALIDATION_FRACTION, random_state + 1)
    actual = split.test.column("value").to_numpy(zero_copy_only=False)
    tried = []
    for point in grid:
        params = {"random_state": random_state, **point}
        predicted = predict_with(name, params, split.train, split.test)
        tried.append({"params": point, **rating_metrics(actual, predicted)})
    best = min(tried, key=lambda row: row["rmse"])
    return dict(best["params"]), tried


def evaluate_ratings(
    log: InteractionLog,
    models: Sequence[str] = DEFAULT_EVALUATION_MODELS,
    *,
    fraction: float = 0.2,
    random_state: int = 42,
    on_model: Callable[[str, dict[str, float]], None] | None = None,
) -> RatingReport:
    """Split once, tune each model on validation, fit on train, report test RMSE/MAE."""
    unknown = [name for name in models if name not in RATING_EVALUATION_MODELS]
    if unknown:
        raise InteractionsError(
            f"the ratings protocol compares rating predictors; {', '.join(unknown)} is not "
            f"one (use {', '.join(RATING_EVALUATION_MODELS)})"
        )
    table = rating_rows(log)
    split = random_rating_split(table, fraction, random_state)
    actual = split.test.column("value").to_numpy(zero_copy_only=False)
    report = RatingReport(
        snapshot=log.snapshot,
        ratings=table.num_rows,
        train=split.train.num_rows,
        test=split.test.num_rows,
        cold_test_pairs=split.cold_pairs,
        fraction=fraction,
        random_state=random_state,
    )
    for name in models:
        started = time.monotonic()
        params, tried = tune(name, split.train, random_state)
        tuned = time.monotonic()
        predicted = predict_with(name, {"random_state": random_state, **params}, split.train,
                                 split.test)  # fmt: skip
        metrics = rating_metrics(actual, predicted)
        report.add(
            name,
            metrics,
            params=params,
            validation=tried,
            tune_seconds=tuned - started,
            fit_seconds=time.monotonic() - tuned,
        )
        if on_model is not None:
            on_model(name, metrics)
    return report
