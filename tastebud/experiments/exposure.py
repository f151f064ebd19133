"""An exposure: one list served to one user, as the analysis reads it.

Every served list is one, in an experiment or not (``experiment`` and ``variant`` are then
null): the metrics of served lists (latency, diversity, coverage) and the attribution of
events to lists (``context.list_id``) need them all. ``items`` is the list in order, so an
item's position is its index plus one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

EXPOSURE_SCHEMA = pa.schema(
    [
        pa.field("list_id", pa.string(), nullable=False),
        pa.field("served_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("experiment", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("items", pa.list_(pa.string()), nullable=False),
        pa.field("model_version", pa.string()),
        pa.field("latency_ms", pa.float64(), nullable=False),
        pa.field("degraded", pa.bool_(), nullable=False),
    ]
)


@dataclass(frozen=True, slots=True)
class Exposure:
    list_id: str
    served_at: datetime
    experiment: str | None
    variant: str | None
    user_id: str | None
    session_id: str | None
    items: tuple[str, ...]
    model_version: str | None
    latency_ms: float
    degraded: bool = False


def exposures_table(exposures: list[Exposure]) -> pa.Table:
    """Exposures as an Arrow table of ``EXPOSURE_SCHEMA``."""
    columns = {name: [getattr(e, name) for e in exposures] for name in EXPOSURE_SCHEMA.names}
    columns["items"] = [list(e.items) for e in exposures]
    return pa.Table.from_pydict(columns, schema=EXPOSURE_SCHEMA)
