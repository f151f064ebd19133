"""The PostgreSQL offline store: one table of rows (view, version, entity, event time,
snapshot, JSONB values). A snapshot is replaced in one transaction (delete, insert), so a
rerun of an interval is idempotent and readers never see half of one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from psycopg.types.json import Jsonb

from tastebud.features.offline import FeatureVersionConflict, OfflineStore, null_table
from tastebud.features.views import ARROW_TYPES, FeatureView, canonical
from tastebud.stores.postgres import PostgresDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_values (
    view text NOT NULL,
    version text NOT NULL,
    entity_id text NOT NULL,
    event_timestamp timestamptz NOT NULL,
    snapshot timestamptz NOT NULL,
    feature_values jsonb NOT NULL,
    PRIMARY KEY (view, version, entity_id, event_timestamp)
);
CREATE INDEX IF NOT EXISTS feature_values_snapshot ON feature_values (view, version, snapshot);
CREATE TABLE IF NOT EXISTS feature_view_versions (
    view text NOT NULL,
    version text NOT NULL,
    fingerprint text NOT NULL,
    definition jsonb NOT NULL,
    PRIMARY KEY (view, version)
);
CREATE TABLE IF NOT EXISTS feature_state (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


class PostgresOfflineStore(OfflineStore):
    def __init__(self, url: str) -> None:
        self.database = PostgresDatabase(url, max_size=4)
        self.database.apply_schema("features", SCHEMA)

    def write(self, view: FeatureView, table: pa.Table, as_of: datetime) -> int:
        self.check_version(view)
        names = view.feature_names
        dtypes = [view.dtype(name) for name in names]
        rows = [
            (
                view.name,
                view.version,
                row["entity_id"],
                row["event_timestamp"],
                as_of,
                Jsonb({n: canonical(d, row[n]) for n, d in zip(names, dtypes, strict=True)}),
            )
            for row in table.to_pylist()
        ]
        with self.database.transaction() as connection:
            connection.execute(
                "DELETE FROM feature_values WHERE view = %s AND version = %s AND snapshot = %s",
                (view.name, view.version, as_of),
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO feature_values (view, version, entity_id, event_timestamp,"
                    " snapshot, feature_values) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (view, version, entity_id, event_timestamp) DO UPDATE"
                    " SET snapshot = EXCLUDED.snapshot, feature_values = EXCLUDED.feature_values",
                    rows,
                )
        return len(rows)

    def latest(
        self,
        view: FeatureView,
        *,
        entity_ids: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pa.Table:
        where = ["view = %s", "version = %s"]
        params: list[Any] = [view.name, view.version]
        for clause, value in (("event_timestamp >= %s", start), ("event_timestamp < %s", end)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if entity_ids is not None:
            where.append("entity_id = ANY(%s)")
            params.append(list(entity_ids))
        sql = (
            "SELECT DISTINCT ON (entity_id) entity_id, event_timestamp, feature_values"
            f" FROM feature_values WHERE {' AND '.join(where)}"
            " ORDER BY entity_id, event_timestamp DESC"
        )
        with self.database.transaction() as connection:
            found = connection.execute(sql, params).fetchall()  # type: ignore[arg-type]
        ids = pa.array([row[0] for row in found], pa.string())
        stamps = pa.array([row[1] for row in found], ARROW_TYPES["timestamp"])
        values = _decode(view, [row[2] for row in found])
        return pa.Table.from_arrays([ids, stamps, *values.columns], schema=view.arrow_schema())

    def point_in_time(
        self, view: FeatureView, entity_ids: pa.Array, timestamps: pa.Array
    ) -> pa.Table:
        rows = len(entity_ids)
        if rows == 0:
            return null_table(view, rows)
        sql = """
            SELECT r.idx, v.feature_values
            FROM unnest(%s::text[], %s::timestamptz[]) WITH ORDINALITY AS r(entity_id, ts, idx)
            LEFT JOIN LATERAL (
                SELECT f.feature_values FROM feature_values f
                WHERE f.view = %s AND f.version = %s AND f.entity_id = r.entity_id
                  AND f.event_timestamp <= r.ts
                  AND f.event_timestamp > r.ts - make_interval(secs => %s)
                ORDER BY f.event_timestamp DESC LIMIT 1
            ) v ON true
            ORDER BY r.idx
        """
        params = (
            entity_ids.to_pylist(),
            timestamps.to_pylist(),
            view.name,
            view.version,
            view.ttl_seconds,
        )
        with self.database.transaction() as connection:
            found = connection.execute(sql, params).fetchall()
        return _decode(view, [row[1] for row in found])

    def snapshots(self, view: FeatureView) -> list[datetime]:
        with self.database.transaction() as connection:
            found = connection.execute(
                "SELECT DISTINCT snapshot FROM feature_values WHERE view = %s AND version = %s"
                " ORDER BY snapshot",
                (view.name, view.version),
            ).fetchall()
        return [row[0] for row in found]

    def prune(self, view: FeatureView, before: datetime) -> int:
        with self.database.transaction() as connection:
            deleted = connection.execute(
                "DELETE FROM feature_values WHERE view = %s AND version = %s AND snapshot < %s"
                " AND snapshot < (SELECT max(snapshot) FROM feature_values"
                " WHERE view = %s AND version = %s) RETURNING snapshot",
                (view.name, view.version, before, view.name, view.version),
            ).fetchall()
        return len({row[0] for row in deleted})

    def check_version(self, view: FeatureView) -> None:
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT INTO feature_view_versions (view, version, fingerprint, definition)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (view, version) DO NOTHING",
                (view.name, view.version, view.fingerprint, Jsonb(view.model_dump())),
            )
            (stored,) = connection.execute(
                "SELECT fingerprint FROM feature_view_versions WHERE view = %s AND version = %s",
                (view.name, view.version),
            ).fetchone() or (view.fingerprint,)
        if stored != view.fingerprint:
            raise FeatureVersionConflict(
                f"view {view.name} {view.version} was stored with another definition "
                f"(fingerprint {stored}, now {view.fingerprint}); "
                "a changed definition needs a new version"
            )

    def get_state(self, key: str) -> dict[str, Any] | None:
        with self.database.transaction() as connection:
            row = connection.execute(
                "SELECT value FROM feature_state WHERE key = %s", (key,)
            ).fetchone()
        return None if row is None else dict(row[0])

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        document = json.loads(json.dumps(value, default=str))
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT INTO feature_state (key, value) VALUES (%s, %s) ON CONFLICT (key)"
                " DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                (key, Jsonb(document)),
            )

    def close(self) -> None:
        self.database.close()


def _decode(view: FeatureView, documents: list[dict[str, Any] | None]) -> pa.Table:
    """JSONB documents (None for no row) to typed columns of the view's features."""
    columns = {}
    for spec in view.features:
        values = [None if doc is None else doc.get(spec.name) for doc in documents]
        if spec.dtype == "timestamp":
            values = [None if v is None else datetime.fromisoformat(v) for v in values]
        columns[spec.name] = pa.array(values, ARROW_TYPES[spec.dtype])
    return pa.table(columns) if columns else null_table(view, len(documents))
