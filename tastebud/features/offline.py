"""The offline store: every computed feature value with its event time, for training sets
(point-in-time correct), backfills, materialization and the parity check.

Two backends behind one interface, chosen by URL: ``parquet:///dir`` (the embedded default:
one Parquet file per view, version and snapshot, queried with DuckDB) and
``postgresql://...`` (one table, JSONB values). One contract suite runs against both
(``tests/features/test_feature_offline_store.py``). This module is the interface the
backends build on; ``store.open_offline_store`` picks one by URL.

Point-in-time rule, for an entity row (id, t): the newest stored row of that entity with
``t - ttl < event_timestamp <= t``. Sources compute a snapshot as of T from events strictly
before T and stamp its rows with T, so nothing after t can reach a row at t.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tastebud.features.views import ARROW_TYPES, ENTITY_KEYS, FeatureRegistry, FeatureView
from tastebud.stores import Closeable, StoreError


class FeatureVersionConflict(StoreError):
    """A view's definition changed but its version did not."""


class UnknownFeatures(KeyError):
    """Feature references that name no registered view or feature."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown features"


SNAPSHOT_FORMAT = "%Y%m%dT%H%M%S%fZ"


def snapshot_name(as_of: datetime) -> str:
    return as_of.astimezone(UTC).strftime(SNAPSHOT_FORMAT)


def parse_snapshot(name: str) -> datetime:
    return datetime.strptime(name, SNAPSHOT_FORMAT).replace(tzinfo=UTC)


class OfflineStore(Closeable, ABC):
    """Feature values with their event times; snapshots are rewritten whole (idempotent)."""

    @abstractmethod
    def write(self, view: FeatureView, table: pa.Table, as_of: datetime) -> int:
        """Store the snapshot ``as_of`` of ``view`` (rows conformed to its schema, all with
        ``event_timestamp <= as_of``). Writing the same snapshot again replaces it."""

    @abstractmethod
    def latest(
        self,
        view: FeatureView,
        *,
        entity_ids: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pa.Table:
        """The newest row per entity with ``start <= event_timestamp < end``."""

    @abstractmethod
    def point_in_time(
        self, view: FeatureView, entity_ids: pa.Array, timestamps: pa.Array
    ) -> pa.Table:
        """Row-aligned with the inputs: each entity's values as of its timestamp (nulls when
        none is known within the view's TTL). Columns: the view's features."""

    @abstractmethod
    def snapshots(self, view: FeatureView) -> list[datetime]:
        """The stored snapshot times of this view's version, oldest first."""

    @abstractmethod
    def prune(self, view: FeatureView, before: datetime) -> int:
        """Drop snapshots older than ``before``, never the newest one; returns how many."""

    @abstractmethod
    def check_version(self, view: FeatureView) -> None:
        """Record the view's fingerprint for its version, or raise FeatureVersionConflict
        when that version was stored with a different definition."""

    @abstractmethod
    def get_state(self, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def set_state(self, key: str, value: dict[str, Any]) -> None: ...

    def get_historical_features(
        self, entity_rows: pa.Table, refs: Sequence[str], registry: FeatureRegistry
    ) -> pa.Table:
        """A training table: ``entity_rows`` (``event_timestamp`` plus ``user_id`` and/or
        ``item_id``) with one column ``view__feature`` per referenced feature, each value as
        it was known at the row's timestamp. Unknown references raise UnknownFeatures
        (a training set silently missing a column is worse than an error)."""
        grouped, unknown = registry.resolve(refs)
        if unknown:
            raise UnknownFeatures(f"unknown feature references: {', '.join(unknown)}")
        if "event_timestamp" not in entity_rows.column_names:
            raise ValueError("entity rows need an event_timestamp column")
        stamps = pc.cast(entity_rows.column("event_timestamp"), ARROW_TYPES["timestamp"])
        result = entity_rows
        for name, features in grouped.items():
            view = registry.view(name)
            key = ENTITY_KEYS[view.entity]
            if key not in entity_rows.column_names:
                raise ValueError(f"view {name} needs a {key} column in the entity rows")
            ids = pc.cast(entity_rows.column(key), pa.string())
            values = self.point_in_time(view, ids, stamps)
            for feature in features:
                result = result.append_column(f"{name}__{feature}", values.column(feature))
        return result


def null_table(view: FeatureView, rows: int) -> pa.Table:
    return pa.table({spec.name: pa.nulls(rows, ARROW_TYPES[spec.dtype]) for spec in view.features})
