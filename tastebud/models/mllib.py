"""Implicit ALS trained by Spark MLlib (``pyspark.ml.recommendation.ALS``, implicit
preferences), imported as a tastebud factor model: training runs on a Spark cluster, the
result is an ordinary ``user_factors_`` / ``item_factors_`` model, so serving, fold-in, ANN
indexes, evaluation and the registry treat it like ``als``.

MLlib's objective is not implicit's, and fold-in follows MLlib's: confidence
``1 + alpha * r`` on observed items (implicit: ``alpha * r``), preference 1 where r > 0,
and ALS-WR regularization, λ times the number of the user's (item's) positive
interactions. No library folds a history into MLlib's factors outside Spark, so the solve
is written here (``_fold_in``: the normal equations of MLlib's last user step, batched).

pyspark (the optional extra ``tastebud[spark]``) is imported only when a model is fitted.
The SparkSession is the process's active one (the Spark engine's), or one started on the
settings' ``spark_master`` with ``spark_conf`` (``tastebud.spark_runtime``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from tastebud.config import load_settings
from tastebud.data.matrix import InteractionMatrix
from tastebud.models.base import ModelError
from tastebud.models.factors import FactorRecommender
from tastebud.spark_runtime import SparkUnavailable, start_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def active_session() -> SparkSession:
    """The process's SparkSession, or a new one on the settings' ``spark_master`` and
    ``spark_conf`` (``tastebud.toml``, ``TASTEBUD_SPARK_MASTER``, ``TASTEBUD_SPARK_CONF``)."""
    settings = load_settings()
    try:
        return start_session(settings.spark_master, settings.spark_conf, "tastebud-mllib-als")
    except SparkUnavailable as error:
        raise ModelError(f"mllib-als trains on Spark: {error}") from None


class MLlibALSRecommender(FactorRecommender):
    """Implicit ALS (Hu, Koren, Volinsky) as Spark MLlib trains it (see the module)."""

    name = "mllib-als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 2.0,
        iterations: int = 15,
        random_state: int = 42,
        blocks: int | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.blocks = blocks

    def _fit(self, data: InteractionMatrix) -> None:
        # lazy: pyspark is the optional extra tastebud[spark]
        from pyspark.ml.recommendation import ALS

        session = active_session()
        blocks = self.blocks or max(2, session.sparkContext.defaultParallelism)
        als = ALS(
            rank=self.factors,
            maxIter=self.iterations,
            regParam=self.regularization,
            alpha=self.alpha,
            implicitPrefs=True,
            userCol="user",
            itemCol="item",
            ratingCol="rating",
            seed=self.random_state,
            numUserBlocks=blocks,
            numItemBlocks=blocks,
            intermediateStorageLevel="MEMORY_ONLY",
            finalStorageLevel="MEMORY_ONLY",
        )
        ratings = _ratings(session, data.matrix)
        try:
            model = als.fit(ratings)
            users = _factors(model.userFactors, data.matrix.shape[0], self.factors)
            items = _factors(model.itemFactors, data.matrix.shape[1], self.factors)
        except Exception as error:  # a JVM error: its first line, not the stack trace
            text = str(error).strip().splitlines()
            raise ModelError(f"Spark MLlib ALS failed: {text[0] if text else error!r}") from None
        self.user_factors_, self.item_factors_ = users, items

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.user_factors_ = state["user_factors_"]
        self.item_factors_ = state["item_factors_"]

    def _item_gram(self) -> np.ndarray:
        """Y^T Y, computed once per set of item factors (the serving snapshot calls it at
        load time, not on the first request)."""
        cached = getattr(self, "gram_", None)
        if cached is None or cached[0] is not self.item_factors_:
            items = self.item_factors_.astype(np.float64)
            cached = (self.item_factors_, items.T @ items)
            self.gram_ = cached
        return cached[1]

    def _fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """MLlib's user step for each history: (YtY + sum alpha*r y yT + lambda*n I) x =
        sum (1 + alpha*r) y over the history's positive items (n of them); an empty history
        gives zeros."""
        rank = self.item_factors_.shape[1]
        out = np.zeros((histories.shape[0], rank), dtype=np.float32)
        gram = self._item_gram()
        items = self.item_factors_.astype(np.float64)
        identity = np.eye(rank)
        for row in range(histories.shape[0]):
            start, end = histories.indptr[row], histories.indptr[row + 1]
            values = histories.data[start:end].astype(np.float64)
            positive = values > 0
            if not positive.any():
                continue
            chosen = items[histories.indices[start:end]]
            extra = self.alpha * np.abs(values)
            a = gram + (chosen.T * extra) @ chosen + self.regularization * positive.sum() * identity
            b = chosen[positive].T @ (1.0 + extra[positive])
            out[row] = np.linalg.solve(a, b)
        return out


def _ratings(session: SparkSession, matrix: sp.csr_matrix) -> DataFrame:
    """The matrix's entries as (user, item, rating) rows, sent to Spark through Arrow."""
    coo = matrix.tocoo()
    table = pa.table(
        {
            "user": pa.array(coo.row, pa.int32()),
            "item": pa.array(coo.col, pa.int32()),
            "rating": pa.array(coo.data, pa.float32()),
        }
    )
    return session.createDataFrame(table)


def _factors(frame: DataFrame, rows: int, rank: int) -> np.ndarray:
    """MLlib's (id, features) rows as a dense array; ids it never saw stay zero."""
    table: Any = frame.toArrow()
    out = np.zeros((rows, rank), dtype=np.float32)
    ids = table.column("id").to_numpy()
    if len(ids):
        features = table.column("features").combine_chunks()
        out[ids] = features.flatten().to_numpy(zero_copy_only=False).reshape(len(ids), rank)
    return out
