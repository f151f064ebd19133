"""The embedded offline store: ``{root}/{view}/{version}/{snapshot}.parquet``, read with
DuckDB (ASOF JOIN for point-in-time). A snapshot file is written to a temporary name and
renamed, so readers in other processes see the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.features.offline import (
    FeatureVersionConflict,
    OfflineStore,
    null_table,
    parse_snapshot,
    snapshot_name,
)
from tastebud.features.views import FeatureView
from tastebud.stores import StoreError

LOOKUP_FILES = 8  # snapshot files per query when looking up a few entities


class ParquetOfflineStore(OfflineStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._duck = duckdb.connect()
        self._duck.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()

    def _folder(self, view: FeatureView) -> Path:
        return self.root / view.name / view.version

    def _files(self, view: FeatureView, after: datetime | None = None) -> list[Path]:
        """Snapshot files, pruned by time: a file holds rows no later than its snapshot."""
        folder = self._folder(view)
        if not folder.is_dir():
            return []
        files = []
        for path in sorted(folder.glob("*.parquet")):
            moment = parse_snapshot(path.stem)
            if after is not None and moment < after:
                continue
            files.append(path)
        return files

    def _query(self, sql: str, params: list[Any], tables: dict[str, pa.Table]) -> pa.Table:
        with self._lock:
            cursor = self._duck.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            for name, table in tables.items():
                cursor.register(name, table)
            return cursor.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as error:
            raise StoreError(f"offline feature store query failed: {error}") from error
        finally:
            cursor.close()

    @staticmethod
    def _source(files: list[Path]) -> str:
        listed = ", ".join("'" + str(path).replace("'", "''") + "'" for path in files)
        return f"read_parquet([{listed}])"

    def write(self, view: FeatureView, table: pa.Table, as_of: datetime) -> int:
        self.check_version(view)
        folder = self._folder(view)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{snapshot_name(as_of)}.parquet"
        staging = folder / f".{target.stem}.{uuid.uuid4().hex}.tmp"
        try:
            pq.write_table(table.cast(view.arrow_schema()), staging, compression="zstd")
            with open(staging, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
        return table.num_rows

    def latest(
        self,
        view: FeatureView,
        *,
        entity_ids: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pa.Table:
        files = self._files(view, after=start)
        if not files:
            return view.arrow_schema().empty_table()
        if entity_ids is None:
            return self._latest(view, files, None, start, end)
        return self._lookup(view, files, list(dict.fromkeys(entity_ids)), start, end)

    def _lookup(
        self,
        view: FeatureView,
        files: list[Path],
        wanted: list[str],
        start: datetime | None,
        end: datetime | None,
    ) -> pa.Table:
        """A few entities (the serving fallback): newest snapshots first, stopping once no
        older file can hold a newer value (a file's rows are no later than its snapshot)."""
        newest_first = files[::-1]
        chunks = [
            newest_first[i : i + LOOKUP_FILES] for i in range(0, len(newest_first), LOOKUP_FILES)
        ]
        best: dict[str, dict[str, Any]] = {}
        remaining = set(wanted)
        for index, chunk in enumerate(chunks):
            for row in self._latest(view, chunk, sorted(remaining), start, end).to_pylist():
                current = best.get(row["entity_id"])
                if current is None or row["event_timestamp"] > current["event_timestamp"]:
                    best[row["entity_id"]] = row
            if index + 1 == len(chunks):
                break
            horizon = parse_snapshot(chunks[index + 1][0].stem)
            remaining = {
                entity
                for entity in remaining
                if entity not in best or best[entity]["event_timestamp"] < horizon
            }
            if not remaining:
                break
        rows = [best[entity] for entity in sorted(best)]
        return pa.Table.from_pylist(rows, schema=view.arrow_schema())

    def _latest(
        self,
        view: FeatureView,
        files: list[Path],
        entity_ids: list[str] | None,
        start: datetime | None,
        end: datetime | None,
    ) -> pa.Table:
        where, params = ["true"], []
        tables: dict[str, pa.Table] = {}
        if start is not None:
            where.append("event_timestamp >= ?")
            params.append(start)
        if end is not None:
            where.append("event_timestamp < ?")
            params.append(end)
        if entity_ids is not None:
            tables["wanted"] = pa.table({"id": pa.array(entity_ids, pa.string())})
            where.append("entity_id IN (SELECT id FROM wanted)")
        sql = (
            f"SELECT * FROM {self._source(files)} WHERE {' AND '.join(where)} "
            "QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY event_timestamp DESC) = 1 "
            "ORDER BY entity_id"
        )
        return self._query(sql, params, tables).cast(view.arrow_schema())

    def point_in_time(
        self, view: FeatureView, entity_ids: pa.Array, timestamps: pa.Array
    ) -> pa.Table:
        rows = len(entity_ids)
        files = self._files(view)
        if rows == 0 or not files:
            return null_table(view, rows)
        entities = pa.table(
            {
                "idx": pa.array(range(rows), pa.int64()),
                "entity_id": entity_ids,
                "ts": timestamps,
            }
        )
        columns = ", ".join(
            f'CASE WHEN f.event_timestamp > r.ts - to_microseconds(?) THEN f."{name}" END '
            f'AS "{name}"'
            for name in view.feature_names
        )
        ttl = int(view.ttl_seconds * 1_000_000)
        sql = (
            f"SELECT r.idx, {columns} FROM entities r ASOF LEFT JOIN {self._source(files)} f "
            "ON r.entity_id = f.entity_id AND r.ts >= f.event_timestamp ORDER BY r.idx"
        )
        found = self._query(sql, [ttl] * len(view.feature_names), {"entities": entities})
        return found.drop_columns(["idx"]).cast(null_table(view, 0).schema)

    def snapshots(self, view: FeatureView) -> list[datetime]:
        return [parse_snapshot(path.stem) for path in self._files(view)]

    def prune(self, view: FeatureView, before: datetime) -> int:
        files = self._files(view)
        doomed = [path for path in files[:-1] if parse_snapshot(path.stem) < before]
        for path in doomed:
            path.unlink(missing_ok=True)
        return len(doomed)

    def check_version(self, view: FeatureView) -> None:
        marker = self.root / view.name / view.version / "_view.json"
        if marker.is_file():
            stored = json.loads(marker.read_text())
            if stored["fingerprint"] != view.fingerprint:
                raise FeatureVersionConflict(
                    f"view {view.name} {view.version} was stored with another definition "
                    f"(fingerprint {stored['fingerprint']}, now {view.fingerprint}); "
                    "a changed definition needs a new version"
                )
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(marker, {"fingerprint": view.fingerprint, "view": view.model_dump()})

    def get_state(self, key: str) -> dict[str, Any] | None:
        path = self.root / "_state" / f"{key}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        _atomic_write(self.root / "_state" / f"{key}.json", value)

    def close(self) -> None:
        self._duck.close()


def _atomic_write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    staging.write_text(json.dumps(document, default=str, sort_keys=True))
    os.replace(staging, path)
