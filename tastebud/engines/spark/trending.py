"""The trending detector's three scans (``tastebud.trending.detector.aggregate``, DuckDB
there) on Spark: per item and user-hour over the recent window, per supported item and
hour, per hour of day. Same columns, unrounded, so the detector scores either the same."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from tastebud.engines.spark.columns import lookup
from tastebud.engines.spark.session import to_arrow

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from tastebud.config import TrendingSettings
    from tastebud.trending.detector import TrendingAggregates

HOUR_US = 3_600_000_000
RECENT_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("users", pa.int64()),
        ("w", pa.float64()),
        ("w2", pa.float64()),
        ("n", pa.int64()),
    ]
)
HOURLY_SCHEMA = pa.schema(
    [("item_id", pa.string()), ("h", pa.int64()), ("w", pa.float64()), ("n", pa.int64())]
)
BY_HOUR_SCHEMA = pa.schema(
    [
        ("hod", pa.int64()),
        ("w", pa.float64()),
        ("newest", pa.int64()),
        ("oldest", pa.int64()),
        ("n", pa.int64()),
        ("recent_n", pa.int64()),
    ]
)
Stage = Callable[[pa.Table], AbstractContextManager["DataFrame"]]


def no_aggregates() -> TrendingAggregates:
    """The aggregates of a window without events."""
    # lazy: the detector loads duckdb; only the trending job needs it
    from tastebud.trending.detector import TrendingAggregates

    return TrendingAggregates(
        recent=RECENT_SCHEMA.empty_table(),
        hourly=HOURLY_SCHEMA.empty_table(),
        by_hour=BY_HOUR_SCHEMA.empty_table(),
    )


def trending_scans(
    session: SparkSession,
    events: DataFrame,
    stage: Stage,
    *,
    weights: Mapping[str, float],
    as_of: datetime,
    params: TrendingSettings,
) -> TrendingAggregates:
    """The three scans of ``events`` (the detector's window ending at ``as_of``); ``stage``
    turns a driver-side table (the supported items) into a DataFrame."""
    from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

    # lazy: the detector loads duckdb; only the trending job needs it
    from tastebud.trending.detector import TrendingAggregates, bounds, supported_items

    origin, recent_start, as_of_us = bounds(as_of, params)
    positive = {name: float(w) for name, w in weights.items() if w > 0}
    engagement = (
        events.select(
            "item_id",
            "user_id",
            F.expr("unix_micros(timestamp)").alias("ts_us"),
            lookup(positive).alias("weight"),
        )
        .where(F.col("weight").isNotNull())
        .where((F.col("ts_us") >= origin) & (F.col("ts_us") < as_of_us))
    ).cache()
    view = f"engagement_{uuid.uuid4().hex[:12]}"
    try:
        engagement.createOrReplaceTempView(view)
        recent = to_arrow(session.sql(_recent_sql(view, recent_start)), RECENT_SCHEMA)
        hourly = _hourly(engagement, stage, supported_items(recent, params), origin)
        by_hour = to_arrow(session.sql(_by_hour_sql(view, recent_start)), BY_HOUR_SCHEMA)
    finally:
        session.catalog.dropTempView(view)
        engagement.unpersist()
    return TrendingAggregates(recent=recent, hourly=hourly, by_hour=by_hour)


def _recent_sql(view: str, recent_start: int) -> str:
    """Per item over the recent window: distinct users, the sum and sum of squares of the
    per user-hour engagement, the event count."""
    return f"""
        SELECT item_id, count(DISTINCT user_id) AS users, sum(b) AS w,
               sum(b * b) AS w2, CAST(sum(n) AS BIGINT) AS n
        FROM (
            SELECT item_id, user_id, ts_us div {HOUR_US} AS h,
                   sum(weight) AS b, count(*) AS n
            FROM {view} WHERE ts_us >= {recent_start}
            GROUP BY item_id, user_id, ts_us div {HOUR_US}
        ) GROUP BY item_id
    """


def _by_hour_sql(view: str, recent_start: int) -> str:
    """Per hour of day: the baseline's engagement, the newest and oldest event, counts."""
    return f"""
        SELECT (ts_us div {HOUR_US}) % 24 AS hod,
               coalesce(sum(weight) FILTER (WHERE ts_us < {recent_start}), 0D) AS w,
               max(ts_us) AS newest, min(ts_us) AS oldest, count(*) AS n,
               count(*) FILTER (WHERE ts_us >= {recent_start}) AS recent_n
        FROM {view} GROUP BY (ts_us div {HOUR_US}) % 24
    """


def _hourly(engagement: DataFrame, stage: Stage, supported: pa.Table, origin: int) -> pa.Table:
    """Per supported item and hour since ``origin``: the engagement and event count."""
    from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

    if not supported.num_rows:
        return HOURLY_SCHEMA.empty_table()
    with stage(supported) as items:
        frame = (
            engagement.join(F.broadcast(items), "item_id", "left_semi")
            .withColumn("h", F.expr(f"(ts_us - {origin}) div {HOUR_US}"))
            .groupBy("item_id", "h")
            .agg(F.sum("weight").alias("w"), F.count(F.lit(1)).alias("n"))
        )
        return to_arrow(frame, HOURLY_SCHEMA)
