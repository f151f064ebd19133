"""The per-event column expressions the Spark aggregations share, each the twin of a
local engine function (``tastebud.engines.local``): the type weight and the time decay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tastebud.engines.local import MICROS_PER_DAY

if TYPE_CHECKING:
    from pyspark.sql import Column


def lookup(weights: Mapping[str, float]) -> Column:
    """Each event's type weight, null for types not in ``weights`` (Python floats go to the
    JVM as exact doubles: no decimal literals to round)."""
    from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

    if not weights:
        return F.lit(None).cast("double")
    pairs: list[Any] = []
    for name, value in weights.items():
        pairs += [F.lit(name), F.lit(float(value))]
    return F.create_map(*pairs)[F.col("event_type")]


def weight(weights: Mapping[str, float]) -> Column:
    """Each event's type weight (0 for types no longer configured), as ``weight_column``."""
    from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

    return F.coalesce(lookup(weights), F.lit(0.0))


def decay(end_us: int, half_life_days: float) -> Column:
    """2^(-age / half-life), age in days back from ``end_us``, as ``decay_column``."""
    from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

    age_days = (F.lit(end_us) - F.expr("unix_micros(timestamp)")) / F.lit(float(MICROS_PER_DAY))
    return F.pow(F.lit(2.0), -F.greatest(age_days, F.lit(0.0)) / F.lit(float(half_life_days)))
