"""Exposures of a PostgreSQL database: one ``exposures`` table on the stores' connection pool.

A batch is one COPY (binary, rows written by psycopg) in one transaction: all of it or none.
``list_id`` is the primary key, so attribution joins by list and a list is never stored
twice; ``served_at`` is indexed for the analysis' scans.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from tastebud.experiments.exposure import EXPOSURE_SCHEMA, Exposure
from tastebud.experiments.exposure_log import ExposureLog, utc
from tastebud.stores.postgres import PostgresDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS exposures (
    list_id TEXT PRIMARY KEY,
    served_at TIMESTAMPTZ NOT NULL,
    experiment TEXT,
    variant TEXT,
    user_id TEXT,
    session_id TEXT,
    items TEXT[] NOT NULL,
    model_version TEXT,
    latency_ms DOUBLE PRECISION NOT NULL,
    degraded BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS exposures_served_at ON exposures (served_at);
CREATE INDEX IF NOT EXISTS exposures_experiment ON exposures (experiment, served_at)
    WHERE experiment IS NOT NULL;
"""
COLUMNS = EXPOSURE_SCHEMA.names
LISTED = ", ".join(COLUMNS)
TYPES = ["text", "timestamptz", "text", "text", "text", "text", "text[]", "text", "float8", "bool"]
SCAN_ROWS = 50_000


class PostgresExposureLog(ExposureLog):
    def __init__(
        self, database: PostgresDatabase, *, flush_seconds: float = 1.0, batch: int = 1_000
    ) -> None:
        super().__init__(flush_seconds=flush_seconds, batch=batch)
        self.database = database
        database.apply_schema("exposures", SCHEMA)

    def _write(self, exposures: list[Exposure]) -> None:
        with (
            self.database.transaction() as connection,
            connection.cursor() as cursor,
            cursor.copy(f"COPY exposures ({LISTED}) FROM STDIN (FORMAT binary)") as copy,
        ):
            copy.set_types(TYPES)
            for e in exposures:
                copy.write_row(
                    (
                        e.list_id,
                        e.served_at,
                        e.experiment,
                        e.variant,
                        e.user_id,
                        e.session_id,
                        list(e.items),
                        e.model_version,
                        float(e.latency_ms),
                        bool(e.degraded),
                    )
                )

    def scan(self, since: datetime, until: datetime) -> pa.Table:
        sql = (
            f"SELECT {LISTED} FROM exposures WHERE served_at >= %s AND served_at < %s"
            " ORDER BY served_at, list_id"
        )
        batches: list[pa.RecordBatch] = []
        with (
            self.database.transaction(read_only=True) as connection,
            connection.cursor(name="tastebud_exposures") as cursor,
        ):
            cursor.itersize = SCAN_ROWS
            cursor.execute(sql, (utc(since), utc(until)))
            while rows := cursor.fetchmany(SCAN_ROWS):
                columns = zip(*rows, strict=True)
                arrays = [
                    pa.array(column, type=field.type)
                    for column, field in zip(columns, EXPOSURE_SCHEMA, strict=True)
                ]
                batches.append(pa.RecordBatch.from_arrays(arrays, schema=EXPOSURE_SCHEMA))
        return pa.Table.from_batches(batches, schema=EXPOSURE_SCHEMA)
