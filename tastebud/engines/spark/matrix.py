"""The training matrix's parts on Spark: per (user, item, UTC day) the summed signed weight,
the summed positive weight, the earliest time and the row count (``MATRIX_PARTS``), with
the same weighting as ``tastebud.data.matrix`` (type weights, rating strength, time decay).
The driver assembles the sparse matrix from them (``tastebud.engines.matrix.assemble``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from tastebud.data.interactions import InteractionsError
from tastebud.engines.matrix import MATRIX_PARTS, unknown_types
from tastebud.engines.spark.columns import weight as type_weight
from tastebud.engines.spark.session import to_arrow

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from tastebud.config import EventTypeSpec
    from tastebud.data.matrix import MatrixOptions


@dataclass(frozen=True)
class Summary:
    """What the weighting needs from the whole log before the parts are computed."""

    reference: float  # the newest event, epoch seconds: the decay's origin
    top_rating: float | None
    rows: int


def matrix_parts(
    events: DataFrame, *, options: MatrixOptions, event_types: Mapping[str, EventTypeSpec]
) -> tuple[pa.Table, Summary]:
    """``MATRIX_PARTS`` of ``events`` (with their ``value`` column) and their summary."""
    from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

    rated = [name for name, spec in event_types.items() if spec.value == "rating"]
    is_rating = F.col("event_type").isin(rated) & F.col("value").isNotNull()
    rows = events.select(
        "user_id",
        "item_id",
        "event_type",
        F.col("value").cast("double").alias("value"),
        (F.expr("unix_micros(timestamp)").cast("double") / F.lit(1e6)).alias("seconds"),
        is_rating.alias("is_rating"),
    ).cache()
    try:
        summary = _summary(rows, event_types)
        parts = (
            rows.withColumn("w", _weight(summary, options, event_types))
            .withColumn("day", F.floor(F.col("seconds") / F.lit(86_400.0)))
            .groupBy("user_id", "item_id", "day")
            .agg(
                F.sum("w").alias("weight"),
                F.sum(F.greatest(F.col("w"), F.lit(0.0))).alias("positive"),
                F.min("seconds").alias("first"),
                F.count(F.lit(1)).alias("rows"),
            )
        )
        return to_arrow(parts, MATRIX_PARTS), summary
    finally:
        rows.unpersist()


def _summary(rows: DataFrame, event_types: Mapping[str, EventTypeSpec]) -> Summary:
    """The newest time, the top rating and the row count; InteractionsError for event
    types the settings do not know."""
    from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

    found = rows.agg(
        F.max("seconds").alias("reference"),
        F.max(F.when(F.col("is_rating"), F.col("value"))).alias("top_rating"),
        F.count(F.lit(1)).alias("rows"),
        F.collect_set("event_type").alias("types"),
    ).collect()[0]
    unknown_types(list(found["types"]), set(event_types))
    top = found["top_rating"]
    return Summary(float(found["reference"]), None if top is None else float(top), found["rows"])


def _weight(
    summary: Summary, options: MatrixOptions, event_types: Mapping[str, EventTypeSpec]
) -> Column:
    """Each row's signed weight: its type's, a rating's strength, times the time decay."""
    from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

    weight = type_weight({name: spec.weight for name, spec in event_types.items()})
    if summary.top_rating is not None:
        scale = options.rating_max or summary.top_rating
        if scale <= 0:
            raise InteractionsError("ratings must have a positive maximum; set rating_max")
        share = F.least(F.greatest(F.col("value") / F.lit(scale), F.lit(0.0)), F.lit(1.0))
        strength = F.when(share >= F.lit(options.liked_rating), share).otherwise(
            F.lit(options.unliked_rating_weight) * share
        )
        weight = F.when(F.col("is_rating"), strength).otherwise(weight)
    if options.half_life_days is not None:
        age_days = (F.lit(summary.reference) - F.col("seconds")) / F.lit(86_400.0)
        weight = weight * F.pow(F.lit(0.5), age_days / F.lit(float(options.half_life_days)))
    return weight
