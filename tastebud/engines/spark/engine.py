"""``SparkEngine``: the event log as a DataFrame (from the exported lake or a per-run
export), the aggregations the jobs ask for, and work mapped over ids on the executors
(batch scoring). The trending scans and the matrix parts live beside it (``trending``,
``matrix``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.engines.base import CATEGORY_SCORES, ITEM_SCORES, Engine, EngineError, EventSource
from tastebud.engines.local import micros
from tastebud.engines.spark.columns import decay, weight
from tastebud.engines.spark.mappers import (
    TIMESTAMP_MICROS,
    EntityMapper,
    IdMapper,
    read_outputs,
)
from tastebud.engines.spark.session import first_line, job_failed, spark_session, to_arrow
from tastebud.engines.spark.sql import spark_sql
from tastebud.engines.spark.trending import no_aggregates, trending_scans
from tastebud.schemas import EVENT_SCHEMA
from tastebud.stores import EventQuery
from tastebud.stores.export import export_events

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from tastebud.config import EventTypeSpec, Settings, TrendingSettings
    from tastebud.data.matrix import InteractionMatrix, MatrixOptions
    from tastebud.trending.detector import TrendingAggregates

COLUMNS = ("user_id", "item_id", "event_type", "timestamp")


class SparkEngine(Engine):
    name = "spark"

    def __init__(
        self,
        master: str,
        staging_url: str,
        events_url: str | None = None,
        conf: Mapping[str, str] | None = None,
    ) -> None:
        self.master = master
        self.staging_url = staging_url.rstrip("/")
        self.events_url = events_url.rstrip("/") if events_url else None
        self.conf = dict(conf or {})

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkEngine:
        jobs = settings.jobs
        staging = jobs.spark_staging_url or str(settings.home / "spark-staging")
        return cls(settings.spark_master, staging, jobs.spark_events_url, settings.spark_conf)

    @property
    def session(self) -> SparkSession:
        return spark_session(self.master, self.conf)

    # -- the event log as a DataFrame --------------------------------------------------
    @contextmanager
    def events(
        self,
        source: EventSource,
        start: datetime | None,
        end: datetime,
        columns: tuple[str, ...] = COLUMNS,
    ) -> Iterator[DataFrame | None]:
        """The events in [start, end) (None when there are none), read from
        ``spark_events_url`` or from a private export removed afterwards."""
        if self.events_url is not None:
            yield self._lake(start, end, columns)
            return
        folder = f"{self.staging_url}/run-{uuid.uuid4().hex[:12]}"
        try:
            exported = export_events(
                source.events, folder, start=start, end=end, columns=columns, check=source.check
            )
            source.check()
            yield self.session.read.parquet(folder).select(*columns) if exported.rows else None
        finally:
            fs, path = fsspec.core.url_to_fs(folder)
            if fs.exists(path):
                fs.rm(path, recursive=True)

    def _lake(self, start: datetime | None, end: datetime, columns: tuple[str, ...]) -> DataFrame:
        """The window's events in the day-partitioned export at ``spark_events_url``: only
        the window's day folders are listed."""
        from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

        ts, day = F.col("timestamp"), F.col("day")
        condition = (ts < F.lit(end)) & (day <= F.lit(end.astimezone(UTC).date()))
        if start is not None:
            condition &= (ts >= F.lit(start)) & (day >= F.lit(start.astimezone(UTC).date()))
        try:
            return self.session.read.parquet(self.events_url).where(condition).select(*columns)
        except Exception as error:  # a missing folder, no day partitions, a bad schema
            raise EngineError(
                f"cannot read the event log at {self.events_url} (`tastebud export "
                f"events --out` writes it, partitioned by day): {first_line(error)}"
            ) from None

    @contextmanager
    def staged_table(self, table: pa.Table) -> Iterator[DataFrame]:
        """A driver-side table (the catalog's categories, the users to rank) as a DataFrame,
        through a Parquet file the executors read."""
        folder = f"{self.staging_url}/table-{uuid.uuid4().hex[:12]}"
        fs, path = fsspec.core.url_to_fs(folder)
        fs.makedirs(path, exist_ok=True)
        try:
            with fs.open(f"{path}/part-0.parquet", "wb") as handle:
                pq.write_table(table, handle)
            yield self.session.read.parquet(folder)
        finally:
            if fs.exists(path):
                fs.rm(path, recursive=True)

    # -- the aggregations ---------------------------------------------------------------
    def item_scores(
        self,
        source: EventSource,
        start: datetime | None,
        end: datetime,
        *,
        weights: Mapping[str, float],
        half_life_days: float | None,
    ) -> pa.Table:
        from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

        with self.events(source, start, end) as events:
            if events is None:
                return ITEM_SCORES.empty_table()
            score = weight(weights)
            if half_life_days is not None:
                score = score * decay(micros(end), half_life_days)
            frame = events.groupBy("item_id").agg(
                F.sum(score).alias("score"), F.count(F.lit(1)).alias("events")
            )
            return to_arrow(frame, ITEM_SCORES)

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
        from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

        with self.events(source, start, end) as events:
            if events is None:
                return CATEGORY_SCORES.empty_table(), 0
            score = weight(weights) * decay(micros(end), half_life_days)
            pairs = events.groupBy("user_id", "item_id").agg(
                F.sum(score).alias("score"), F.count(F.lit(1)).alias("events")
            )
            pairs = pairs.cache()
            try:
                counted = pairs.agg(F.sum("events")).collect()[0][0]
                with self.staged_table(item_categories) as categories:
                    totals = (
                        pairs.join(categories, "item_id")
                        .groupBy("user_id", "category")
                        .agg(F.sum("score").alias("score"))
                    )
                    return to_arrow(totals, CATEGORY_SCORES), int(counted or 0)
            finally:
                pairs.unpersist()

    def trending_aggregates(
        self,
        source: EventSource,
        *,
        weights: Mapping[str, float],
        as_of: datetime,
        params: TrendingSettings,
    ) -> TrendingAggregates:
        # lazy: the detector loads duckdb; only the trending job needs it
        from tastebud.trending.detector import window

        start, end = window(as_of, params)
        with self.events(source, start, end) as events:
            if events is None:
                return no_aggregates()
            return trending_scans(
                self.session,
                events,
                self.staged_table,
                weights=weights,
                as_of=as_of,
                params=params,
            )

    def interaction_matrix(
        self,
        source: EventSource,
        end: datetime,
        *,
        options: MatrixOptions,
        event_types: Mapping[str, EventTypeSpec],
    ) -> InteractionMatrix:
        """Per (user, item, UTC day) parts on the executors (``spark.matrix``), the sparse
        matrix assembled here: its size is the preferences', not the events'."""
        # lazy: scipy (through the matrix modules) loads only when a job trains
        from tastebud.data.interactions import InteractionsError
        from tastebud.engines.matrix import assemble, event_store_snapshot
        from tastebud.engines.spark.matrix import matrix_parts

        last_seq = source.events.last_seq()
        with self.events(source, None, end, columns=(*COLUMNS, "value")) as events:
            if events is None:
                raise InteractionsError("no interactions to learn from: the data is empty")
            table, summary = matrix_parts(events, options=options, event_types=event_types)
        snapshot = event_store_snapshot(last_seq, summary.rows, EventQuery(end=end))
        return assemble(table, reference=summary.reference, snapshot=snapshot, options=options)

    def sql_view(
        self,
        source: EventSource,
        query: str,
        *,
        start: datetime,
        as_of: datetime,
        items: pa.Table | None,
    ) -> pa.Table | None:
        """The view's SQL, written once in DuckDB's dialect, translated to Spark SQL
        (``spark_sql``) and run over the window's events and the catalog on the executors;
        None when it reads events and the window has none."""
        suffix = uuid.uuid4().hex[:12]
        names = {"events": f"events_{suffix}", "items": f"items_{suffix}"}
        translated = spark_sql(query, names)
        session = self.session
        with contextlib.ExitStack() as stack:
            if names["events"] in translated:
                events = stack.enter_context(
                    self.events(source, start, as_of, columns=tuple(EVENT_SCHEMA.names))
                )
                if events is None:
                    return None
                events.createOrReplaceTempView(names["events"])
            if items is not None and names["items"] in translated:
                stack.enter_context(self.staged_table(items)).createOrReplaceTempView(
                    names["items"]
                )
            try:
                return session.sql(translated, args={"as_of": as_of}).toArrow()
            except Exception as error:
                raise job_failed(error) from error
            finally:
                for name in names.values():
                    session.catalog.dropTempView(name)

    def by_entity(
        self,
        source: EventSource,
        func: Callable[[pa.Table], pa.Table | None],
        *,
        key: str,
        start: datetime,
        as_of: datetime,
    ) -> pa.Table | None:
        """``func`` on the executors, once per partition of the window's events hashed by
        ``key`` (so each key's events are in one partition; empty partitions call nothing),
        outputs back as Arrow."""
        from pyspark.sql import functions as F  # lazy: pyspark is the optional extra [spark]

        columns = tuple(EVENT_SCHEMA.names)
        with self.events(source, start, as_of, columns=columns) as events:
            if events is None:
                return None
            exact = [
                F.expr("unix_micros(timestamp)").alias(TIMESTAMP_MICROS)
                if name == "timestamp"
                else F.col(name)
                for name in columns
            ]
            # spark.sql.shuffle.partitions of them (200 by default): a partition is one
            # Python call holding its events in memory, so size it with the data.
            partitions = events.select(*exact).repartition(key)
            try:
                blobs = partitions.rdd.mapPartitions(EntityMapper(func)).collect()
            except Exception as error:
                raise job_failed(error) from error
        return read_outputs(blobs)

    def map_ids(
        self,
        ids: list[str],
        func: Callable[[Iterator[pa.RecordBatch], Any], Iterator[pa.RecordBatch]],
        shared: Any,
        schema: pa.Schema,
        *,
        partitions: int | None = None,
    ) -> pa.Table:
        """Run ``func(batches of ids, shared)`` on the executors over ``partitions`` slices
        of ``ids`` and collect its (small) output rows. ``shared`` reaches every executor
        once, as a broadcast variable; ``func`` must be importable there (``mappers``)."""
        session = self.session
        count = partitions or max(2, session.sparkContext.defaultParallelism * 2)
        broadcast = session.sparkContext.broadcast(shared)
        table = pa.table({"id": pa.array(ids, pa.string())})
        try:
            with self.staged_table(table) as frame:
                rows = frame.repartition(count).rdd.mapPartitions(IdMapper(func, broadcast))
                try:
                    collected = rows.collect()
                except Exception as error:
                    raise job_failed(error) from error
            return pa.Table.from_pylist(collected, schema=schema)
        finally:
            broadcast.destroy()
