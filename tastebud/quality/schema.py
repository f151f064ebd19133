"""The schema check: a batch of events against the event contract, with pandera.

Why pandera: the field's library for dataframe schemas, and since 0.24 it validates Arrow
tables natively (``pandera.pyarrow``, through narwhals): the event store's batches are
checked as they come, with no copy into pandas (which stays out of the process) or polars.
Why a check when ingest already validates: the store also holds rows written before a rule
changed, rows bulk-loaded by other tools, and ingest knows no value ranges. The contract
here is stricter than ingest's: a rating within the scale, durations and amounts
non-negative, ids of the configured form, known event types and devices.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tastebud.config import Settings
from tastebud.schemas import DEVICE_TYPE_VALUES

if TYPE_CHECKING:
    import pyarrow as pa

# Each event type's value kind (config.EventTypeSpec.value) gets a column of its own, so a
# range applies to the kind it belongs to (a rating of 4, not a play of 4 seconds).
VALUE_COLUMNS = {"rating": "rating_value", "seconds": "seconds_value"}
AMOUNT_COLUMN = "amount_value"  # prices and counts: non-negative


@dataclass
class SchemaTally:
    """Failures found so far, summed over batches: failing values per (column, check)."""

    rows: int = 0
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def invalid_share(self) -> float:
        """Failing values over rows, at most 1 (a row failing twice counts twice: an upper
        bound of the share of bad rows, exact when each bad row breaks one rule)."""
        return min(1.0, sum(self.failures.values()) / self.rows) if self.rows else 0.0

    def details(self, limit: int = 10) -> list[dict[str, Any]]:
        return [
            {"column": column, "check": check, "count": count, "example": self.examples[key]}
            for key, count in self.failures.most_common(limit)
            for column, check in [key]
        ]


def event_schema(settings: Settings, as_of: datetime) -> Any:
    """The pandera schema of a batch of events (with its derived value columns)."""
    # lazy: pandera (narwhals) and pyarrow wait for a check (quality history starts without)
    import pyarrow as pa

    with warnings.catch_warnings():
        # Where pandas is installed (the dashboard's Streamlit brings it), pandera's package
        # import loads pyspark.pandas when pyspark is there too, and pyspark warns that it
        # does not support pandas 3. tastebud uses neither pandas nor pyspark.pandas here.
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        import pandera.pyarrow as pp  # lazy: as above

    rules, quality = settings.events, settings.quality
    timestamp = pa.timestamp("us", tz="UTC")

    def identifier(nullable: bool = False) -> Any:
        return pp.Column(
            pa.string(),
            [
                pp.Check.str_length(1, rules.max_id_length),
                pp.Check.str_matches(rules.id_pattern),
            ],
            nullable=nullable,
        )

    latest = as_of + timedelta(seconds=rules.max_future_seconds)
    columns = {
        "event_id": identifier(),
        "user_id": identifier(),
        "item_id": identifier(),
        "event_type": pp.Column(pa.string(), pp.Check.isin(sorted(rules.types))),
        "value": pp.Column(pa.float64(), nullable=True),
        "timestamp": pp.Column(
            timestamp, pp.Check.in_range(rules.earliest_timestamp, latest), nullable=False
        ),
        "session_id": identifier(nullable=True),
        "device_type": pp.Column(
            pa.string(), pp.Check.isin(sorted(DEVICE_TYPE_VALUES)), nullable=True
        ),
        "locale": pp.Column(
            pa.string(), pp.Check.str_length(1, rules.max_locale_length), nullable=True
        ),
        "rating_value": pp.Column(
            pa.float64(), pp.Check.in_range(quality.rating_min, quality.rating_max), nullable=True
        ),
        "seconds_value": pp.Column(
            pa.float64(), pp.Check.in_range(0.0, quality.max_duration_seconds), nullable=True
        ),
        AMOUNT_COLUMN: pp.Column(pa.float64(), pp.Check.ge(0.0), nullable=True),
    }
    return pp.DataFrameSchema(columns, strict=False, coerce=False)


def with_value_columns(table: pa.Table, settings: Settings) -> pa.Table:
    """``table`` plus one column per value kind: the value where the event's type has that
    kind, else null. Tables lacking ``event_type`` or ``value`` are left as they are (the
    schema then reports the missing column)."""
    # lazy: pyarrow waits for a check (quality history starts without it)
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    if "event_type" not in names or "value" not in names:
        return table
    if not pa.types.is_floating(table.schema.field("value").type):
        return table
    types = settings.events.types
    kinds = {VALUE_COLUMNS.get(spec.value, AMOUNT_COLUMN): [] for spec in types.values()}  # type: dict[str, list[str]]
    for name, spec in types.items():
        if spec.value != "none":
            kinds[VALUE_COLUMNS.get(spec.value, AMOUNT_COLUMN)].append(name)
    value = pc.cast(table.column("value"), pa.float64())
    for column in (*VALUE_COLUMNS.values(), AMOUNT_COLUMN):
        members = pa.array(kinds.get(column, []), pa.string())
        mask = pc.fill_null(pc.is_in(table.column("event_type"), value_set=members), False)
        table = table.append_column(column, pc.if_else(mask, value, pa.scalar(None, pa.float64())))
    return table


def check_table(table: pa.Table, schema: Any, settings: Settings, tally: SchemaTally) -> None:
    """Validate one batch and add its failures to ``tally``."""
    from pandera.errors import SchemaErrors  # lazy: pandera waits for a check (see above)

    tally.rows += table.num_rows
    try:
        schema.validate(with_value_columns(table, settings), lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases.to_pydict()
        for column, check, case in zip(
            cases["column"], cases["check"], cases["failure_case"], strict=True
        ):
            key = (column or "(table)", check)
            # A missing column or a wrong type breaks every row of the batch, not one.
            structural = check == "column_in_dataframe" or check.startswith("dtype(")
            tally.failures[key] += table.num_rows if structural else 1
            tally.examples.setdefault(key, str(case)[:120])
