"""What a batch engine computes: the scans of the event log that grow with its size.

A job keeps its own rules (windows, minimum support, fills, rounding, ranking, publishing);
it asks an engine only for the aggregations over the raw events, whose results are small
(one row per item, per user and category, per supported item and hour). Every engine returns
the same columns, unrounded, so the job's own code makes the same output from either and
the parity tests (tests/engines) hold them equal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

if TYPE_CHECKING:
    from tastebud.config import EventTypeSpec, TrendingSettings
    from tastebud.data.matrix import InteractionMatrix, MatrixOptions
    from tastebud.stores import EventStore
    from tastebud.trending.detector import TrendingAggregates

ITEM_SCORES = pa.schema([("item_id", pa.string()), ("score", pa.float64()), ("events", pa.int64())])
CATEGORY_SCORES = pa.schema(
    [("user_id", pa.string()), ("category", pa.string()), ("score", pa.float64())]
)


class EngineError(RuntimeError):
    """An engine could not run (not installed, its cluster unreachable); says what to do."""


def _never_cancelled() -> None:
    return None


@dataclass(frozen=True)
class EventSource:
    """The events a job reads, and its cancellation check (called between batches)."""

    events: EventStore
    check: Callable[[], None] = field(default=_never_cancelled)
    name: str = "events"


class Engine(ABC):
    """A place batch work runs. Implementations: ``local`` (this process: Arrow, DuckDB,
    numpy) and ``spark`` (Apache Spark, over the event log exported as Parquet)."""

    name: ClassVar[str]

    @abstractmethod
    def item_scores(
        self,
        source: EventSource,
        start: datetime | None,
        end: datetime,
        *,
        weights: Mapping[str, float],
        half_life_days: float | None,
    ) -> pa.Table:
        """``ITEM_SCORES`` for the events in [start, end): per item, the sum of
        weight(type) * 2^(-age / half-life) (age from ``end``; no decay when None) and its
        event count. Empty when the window has no event."""

    @abstractmethod
    def category_scores(
        self,
        source: EventSource,
        start: datetime,
        end: datetime,
        *,
        weights: Mapping[str, float],
        half_life_days: float,
        item_categories: pa.Table,
    ) -> tuple[pa.Table, int]:
        """``CATEGORY_SCORES`` (per user and category: the decayed weighted engagement with
        the items of that category, ``item_categories`` being item_id, category rows) and
        the window's event count."""

    @abstractmethod
    def trending_aggregates(
        self,
        source: EventSource,
        *,
        weights: Mapping[str, float],
        as_of: datetime,
        params: TrendingSettings,
    ) -> TrendingAggregates:
        """The trending detector's scans of its window ending at ``as_of``."""

    @abstractmethod
    def interaction_matrix(
        self,
        source: EventSource,
        end: datetime,
        *,
        options: MatrixOptions,
        event_types: Mapping[str, EventTypeSpec],
    ) -> InteractionMatrix:
        """The training matrix of every event before ``end`` (``build_matrix``'s result)."""

    def sql_view(
        self,
        source: EventSource,
        query: str,
        *,
        start: datetime,
        as_of: datetime,
        items: pa.Table | None,
    ) -> pa.Table | None:
        """A feature view's SQL (DuckDB's dialect: ``events`` in [start, as_of), ``items``,
        ``$as_of``) run on this engine; the local engine runs it in DuckDB itself
        (``tastebud.features.compute``), so only other engines implement it."""
        raise EngineError(f"the {self.name} engine does not run SQL feature views")

    def by_entity(
        self,
        source: EventSource,
        func: Callable[[pa.Table], pa.Table | None],
        *,
        key: str,
        start: datetime,
        as_of: datetime,
    ) -> pa.Table | None:
        """A Python function over the events in [start, as_of) grouped by ``key``
        (``user_id`` or ``item_id``): called per group of keys with every event of each,
        its outputs concatenated (None when it returned none). The local engine calls it
        once on the whole window itself (``tastebud.features.compute``), so only other
        engines implement it."""
        raise EngineError(f"the {self.name} engine does not run Python views by entity")

    def close(self) -> None:  # noqa: B027  (engines without resources need nothing)
        """Release what the engine holds (a Spark engine leaves the shared session up)."""
