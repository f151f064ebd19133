"""``train --objective rating``: fit a rating predictor on a log's explicit ratings.

The preference matrix of ``data/matrix.py`` turns ratings into confidence weights; a rating
predictor needs the ratings themselves, so this module builds its own matrix (values = the
rating; a pair rated twice keeps the mean). Before the final fit, a seeded 10% of the
ratings is held out once to measure validation RMSE/MAE for the registry's manifest; the
model is then refitted on everything. A diverged fit (NaN loss) raises before anything is
saved, so the registry stays as it was.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from tastebud.data.interactions import InteractionLog, InteractionsError
from tastebud.data.matrix import InteractionMatrix, MatrixOptions, finished_matrix
from tastebud.data.vocabulary import Vocabulary
from tastebud.evaluation.ratings import rating_metrics
from tastebud.models import make_model
from tastebud.models.rating import RATING_MODELS, RatingRecommender
from tastebud.registry import ModelRegistry, ModelVersion
from tastebud.training.configuration import Configuration
from tastebud.training.pipeline import (
    TrainingResult,
    check_trainable,
    coverage_of,
    manifest_for,
    save_training,
)

DEFAULT_RATING_MODEL = "svdpp"
VALIDATION_FRACTION = 0.1
MIN_VALIDATION_RATINGS = 10


def rating_rows(log: InteractionLog) -> pa.Table:
    """The rows that carry a rating, or a clear refusal when there are none."""
    table = log.table
    if table.num_rows == 0:
        raise InteractionsError("the data has no rows: there are no ratings to learn or judge")
    values = table.column("value")
    rated = table.filter(pc.is_valid(values))
    if rated.num_rows == 0:
        raise InteractionsError(
            "a rating predictor needs explicit ratings: the data has no `rating` (or `value`) "
            "column with numbers; give a file with user_id,item_id,rating"
        )
    return rated


OUT_OF_SCALE = "rating_out_of_scale"
MAX_OUT_OF_SCALE_SHARE = 0.05
"""Above this share of the ratings outside the scale, the scale is wrong, not the rows: a
file rated 1-10 against the default 0.5-5 would lose half its ratings, so it is refused."""


def within_scale(log: InteractionLog, low: float, high: float) -> InteractionLog:
    """``log`` without its ratings outside [low, high] (the configured scale, ``[quality]
    rating_min``/``rating_max``), counted in ``dropped`` as ``rating_out_of_scale``: a 99
    on a 1-5 scale is a typo or another scale, and a rating predictor would stretch its
    prediction range to it. Rows without a rating are kept. Raises ``InteractionsError``
    when more than ``MAX_OUT_OF_SCALE_SHARE`` of the ratings are outside: the scale is
    then another one, and dropping would lose good rows."""
    values = log.table.column("value")
    outside = pc.fill_null(pc.or_(pc.less(values, low), pc.greater(values, high)), False)
    count = int(pc.sum(outside).as_py() or 0)
    if count == 0:
        return log
    rated = len(values) - values.null_count
    if count > MAX_OUT_OF_SCALE_SHARE * rated:
        seen = pc.min_max(values).as_py()
        raise InteractionsError(
            f"{count:,} of {rated:,} ratings ({count / rated:.0%}) are outside the scale "
            f"[{low:g}, {high:g}] (the file's run from {seen['min']:g} to {seen['max']:g}): "
            "set [quality] rating_min and rating_max to the file's scale"
        )
    kept = log.slice_rows(~outside.to_numpy(zero_copy_only=False), f"scale:{low}:{high}")
    kept.dropped = {**log.dropped, OUT_OF_SCALE: log.dropped.get(OUT_OF_SCALE, 0) + count}
    kept.ignored_columns = list(log.ignored_columns)
    return kept


def ratings_matrix(
    log: InteractionLog,
    *,
    users: Vocabulary | None = None,
    items: Vocabulary | None = None,
) -> InteractionMatrix:
    """Users x items with the rating as the value (mean of repeats); ``users``/``items``
    pin the axes (rows outside them are dropped)."""
    table = rating_rows(log)
    users = users or Vocabulary.from_ids(table.column("user_id"))
    items = items or Vocabulary.from_ids(table.column("item_id"))
    rows = users.index(table.column("user_id"))
    cols = items.index(table.column("item_id"))
    ratings = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    keep = (rows >= 0) & (cols >= 0)
    rows, cols, ratings = rows[keep], cols[keep], ratings[keep]
    shape = (len(users), len(items))
    sums = sp.csr_matrix((ratings, (rows, cols)), shape=shape)
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    sums.sum_duplicates()
    counts.sum_duplicates()
    means = sums.copy()
    means.data = sums.data / counts.data  # same sparsity pattern: both built from the pairs
    seconds = _seconds(table.filter(pa.array(keep)))
    day0 = math.floor(float(seconds.min()) / 86_400.0) * 86_400.0
    return finished_matrix(
        means,
        sp.csr_matrix(shape, dtype=np.float32),
        users,
        items,
        cols=cols,
        day=((seconds - day0) // 86_400.0).astype(np.int64),
        day_weight=np.ones(len(cols)),
        day0=day0,
        reference=float(seconds.max()),
        snapshot=log.snapshot,
        options=MatrixOptions(),
        stats={"rows": table.num_rows, "ratings": int(keep.sum())},
    )


def _seconds(table: pa.Table) -> np.ndarray:
    stamps = table.column("timestamp")
    if stamps.null_count == len(stamps):
        return np.zeros(table.num_rows)
    micros = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
    return np.where(np.isnan(micros), np.nanmin(micros), micros) / 1e6


def check_rating_model(name: str) -> None:
    if name not in RATING_MODELS:
        raise InteractionsError(
            f"{name!r} does not predict ratings; --objective rating fits one of "
            f"{', '.join(RATING_MODELS)}"
        )


def validation_metrics(
    log: InteractionLog, model: str, params: dict[str, Any], random_state: int
) -> dict[str, float]:
    """RMSE/MAE of the model fitted on 90% of the ratings and judged on the other 10%
    (nothing when that 10% holds fewer than ``MIN_VALIDATION_RATINGS``)."""
    table = rating_rows(log)
    held = np.random.default_rng(random_state).random(table.num_rows) < VALIDATION_FRACTION
    if held.sum() < MIN_VALIDATION_RATINGS:
        return {}  # too few ratings to say anything; the fit itself still runs
    train_log = InteractionLog(table.filter(pa.array(~held)), f"{log.snapshot}:rating-train")
    fitted = make_model(model, **params).fit(ratings_matrix(train_log))
    assert isinstance(fitted, RatingRecommender)
    test = table.filter(pa.array(held))
    predicted = fitted.predict_pairs(
        test.column("user_id").to_pylist(), test.column("item_id").to_pylist()
    )
    actual = test.column("value").to_numpy(zero_copy_only=False)
    return rating_metrics(actual, predicted)


@dataclass
class RatingTraining:
    """A fitted rating predictor (as a ``TrainingResult``, so it saves and registers like
    any model) and its validation RMSE/MAE."""

    result: TrainingResult
    metrics: dict[str, float] = field(default_factory=dict)

    def manifest(self, log: InteractionLog) -> dict[str, Any]:
        """``manifest_for``'s fields plus the objective, the rating scale and the
        validation RMSE/MAE (as ``rating.validation.*`` metrics)."""
        model = self.result.model
        assert isinstance(model, RatingRecommender)
        manifest = manifest_for(self.result, log)
        manifest["objective"] = "rating"
        manifest["rating_scale"] = [float(v) for v in model.rating_range_]
        manifest["metrics"] = {
            **manifest["metrics"],
            **{f"rating.validation.{k}": v for k, v in self.metrics.items()},
        }
        return manifest


def train_rating(
    log: InteractionLog,
    *,
    model: str = DEFAULT_RATING_MODEL,
    params: dict[str, Any] | None = None,
    random_state: int = 42,
    validate: bool = True,
) -> RatingTraining:
    """Fit a rating predictor on every rating (after a validation fit, unless asked not
    to)."""
    check_rating_model(model)
    check_trainable(log)
    params = {"random_state": random_state, **(params or {})}
    timings: dict[str, float] = {}
    metrics: dict[str, float] = {}
    if validate:
        started = time.monotonic()
        metrics = validation_metrics(log, model, params, random_state)
        timings["validation_seconds"] = time.monotonic() - started
    started = time.monotonic()
    matrix = ratings_matrix(log)
    fitted = make_model(model, **params).fit(matrix)
    timings["fit_seconds"] = time.monotonic() - started
    configuration = Configuration({"objective": "rating"}, model, params)
    result = TrainingResult(fitted, matrix, configuration, None, None, timings)
    result.coverage = coverage_of(fitted, log)
    return RatingTraining(result, metrics)


def register_rating(
    training: RatingTraining,
    log: InteractionLog,
    registry: ModelRegistry,
    *,
    aliases: Sequence[str] = (),
) -> ModelVersion:
    """Register like ``register_training``, the manifest naming the rating objective."""
    with tempfile.TemporaryDirectory(prefix="tastebud-train-") as scratch:
        folder = save_training(training.result, log, Path(scratch) / "model")
        return registry.register(folder, training.manifest(log), aliases=aliases)
