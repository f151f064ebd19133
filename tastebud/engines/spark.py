"""The Spark engine: the same aggregations as ``tastebud.engines.local``, run by Apache Spark
(pyspark, the optional extra ``tastebud[spark]``) on ``spark_master`` (``local[N]``, a
``spark://`` standalone cluster, ``k8s://``, ``yarn``).

The event log reaches Spark as Parquet partitioned by day (``tastebud.stores.export``):

* with ``[jobs] spark_events_url`` set, from that dataset, kept current by
  ``tastebud export events --since ... --out URL`` (the scale-out layout: executors read the
  files, only the day partitions of the window are listed);
* otherwise each run exports its window to a private folder under ``spark_staging_url``
  first (the whole window streams through this process once), and removes it afterwards.

Results come back through Arrow and are small (per item; per user and category; per
supported item and hour); the job turns them into outputs with the same code as locally.
pyspark is imported here only, and only when a job runs on Spark.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.engines.base import CATEGORY_SCORES, ITEM_SCORES, Engine, EngineError, EventSource
from tastebud.engines.local import MICROS_PER_DAY, micros
from tastebud.stores.export import export_events

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from tastebud.config import EventTypeSpec, Settings, TrendingSettings
    from tastebud.data.matrix import InteractionMatrix, MatrixOptions
    from tastebud.trending.detector import TrendingAggregates

HOUR_US = 3_600_000_000
COLUMNS = ("user_id", "item_id", "event_type", "timestamp")
CONNECT_TIMEOUT = 3.0
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
_SESSION_LOCK = threading.Lock()


def check_master(master: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast (EngineError) when a cluster master does not answer: Spark itself would
    retry its registration for a minute or more before giving up."""
    if master.startswith("spark://"):
        hosts = master.removeprefix("spark://").split(",")
        targets = [(host.rsplit(":", 1)[0], int(host.rsplit(":", 1)[1] or 7077)) for host in hosts]
    elif master.startswith("k8s://"):
        api = urlparse(master.removeprefix("k8s://"))
        default = 443 if api.scheme in ("https", "") else 80
        targets = [(api.hostname or "", api.port or default)]
    else:  # local[N], yarn: nothing to reach before the session starts
        return
    errors = []
    for host, port in targets:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return
        except OSError as error:
            errors.append(f"{host}:{port}: {error}")
    raise EngineError(
        f"Spark master {master} is unreachable ({'; '.join(errors)}); check spark_master "
        "(TASTEBUD_SPARK_MASTER) or run the job with --engine local"
    )


def spark_session(master: str) -> SparkSession:
    """The process's SparkSession on ``master`` (an active one is reused: tests start one
    per test session). EngineError when pyspark, Java or the master is missing."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError("the Spark engine needs pyspark: pip install 'tastebud[spark]'") from None
    check_master(master)
    with _SESSION_LOCK:
        existing = SparkSession._instantiatedSession
        if existing is not None and existing._sc._jsc is not None:
            return existing
        if shutil.which("java") is None and not _java_home():
            raise EngineError(
                "the Spark engine needs a Java runtime (17+): install Debian's "
                "openjdk-17-jre-headless (scripts/install-java.sh) or set JAVA_HOME"
            )
        builder = (
            SparkSession.builder.master(master)
            .appName("tastebud-jobs")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
        )
        if master.startswith("local"):  # one machine: stay on the loopback interface
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            # Python workers run this interpreter (pyspark's default is `python3` on PATH).
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
        try:
            return builder.getOrCreate()
        except Exception as error:
            raise EngineError(f"could not start Spark on {master}: {_first_line(error)}") from None


def _java_home() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(home) and (Path(home) / "bin" / "java").exists()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__


def _to_arrow(frame: DataFrame, schema: pa.Schema) -> pa.Table:
    """Collect a (small) result through Arrow, in ``schema``'s types; a failure on the
    executors becomes an EngineError with its first line (not a JVM stack trace)."""
    try:
        table = frame.toArrow()
    except Exception as error:
        raise EngineError(f"the Spark job failed: {_first_line(error)}") from error
    return table.select(schema.names).cast(schema)


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, master: str, staging_url: str, events_url: str | None = None) -> None:
        self.master = master
        self.staging_url = staging_url.rstrip("/")
        self.events_url = events_url.rstrip("/") if events_url else None

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkEngine:
        jobs = settings.jobs
        staging = jobs.spark_staging_url or str(settings.home / "spark-staging")
        return cls(settings.spark_master, staging, jobs.spark_events_url)

    @property
    def session(self) -> SparkSession:
        return spark_session(self.master)

    # -- the event log as a DataFrame --------------------------------------------------
    @contextmanager
    def _events(
        self,
        source: EventSource,
        start: datetime | None,
        end: datetime,
        columns: tuple[str, ...] = COLUMNS,
    ) -> Iterator[DataFrame | None]:
        """The events in [start, end) (None when there are none), read from
        ``spark_events_url`` or from a private export removed afterwards."""
        from pyspark.sql import functions as F

        session = self.session
        if self.events_url is not None:
            ts, day = F.col("timestamp"), F.col("day")
            condition = (ts < F.lit(end)) & (day <= F.lit(end.astimezone(UTC).date()))
            if start is not None:
                condition &= (ts >= F.lit(start)) & (day >= F.lit(start.astimezone(UTC).date()))
            try:
                frame = session.read.parquet(self.events_url).where(condition).select(*columns)
            except Exception as error:  # a missing folder, no day partitions, a bad schema
                raise EngineError(
                    f"cannot read the event log at {self.events_url} (`tastebud export "
                    f"events --out` writes it, partitioned by day): {_first_line(error)}"
                ) from None
            yield frame
            return
        folder = f"{self.staging_url}/run-{uuid.uuid4().hex[:12]}"
        try:
            exported = export_events(
                source.events, folder, start=start, end=end, columns=columns, check=source.check
            )
            source.check()
            yield session.read.parquet(folder).select(*columns) if exported.rows else None
        finally:
            fs, path = fsspec.core.url_to_fs(folder)
            if fs.exists(path):
                fs.rm(path, recursive=True)

    @contextmanager
    def _staged_table(self, table: pa.Table) -> Iterator[DataFrame]:
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
        from pyspark.sql import functions as F

        with self._events(source, start, end) as events:
            if events is None:
                return ITEM_SCORES.empty_table()
            score = _weight(weights)
            if half_life_days is not None:
                score = score * _decay(micros(end), half_life_days)
            frame = events.groupBy("item_id").agg(
                F.sum(score).alias("score"), F.count(F.lit(1)).alias("events")
            )
            return _to_arrow(frame, ITEM_SCORES)

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
        from pyspark.sql import functions as F

        with self._events(source, start, end) as events:
            if events is None:
                return CATEGORY_SCORES.empty_table(), 0
            score = _weight(weights) * _decay(micros(end), half_life_days)
            pairs = events.groupBy("user_id", "item_id").agg(
                F.sum(score).alias("score"), F.count(F.lit(1)).alias("events")
            )
            pairs = pairs.cache()
            try:
                counted = pairs.agg(F.sum("events")).collect()[0][0]
                with self._staged_table(item_categories) as categories:
                    totals = (
                        pairs.join(categories, "item_id")
                        .groupBy("user_id", "category")
                        .agg(F.sum("score").alias("score"))
                    )
                    return _to_arrow(totals, CATEGORY_SCORES), int(counted or 0)
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
        from pyspark.sql import functions as F

        from tastebud.trending.detector import TrendingAggregates, bounds, window

        start, end = window(as_of, params)
        origin, recent_start, as_of_us = bounds(as_of, params)
        with self._events(source, start, end) as events:
            if events is None:
                return TrendingAggregates(
                    recent=RECENT_SCHEMA.empty_table(),
                    hourly=HOURLY_SCHEMA.empty_table(),
                    by_hour=BY_HOUR_SCHEMA.empty_table(),
                )
            positive = {name: float(w) for name, w in weights.items() if w > 0}
            engagement = (
                events.select(
                    "item_id",
                    "user_id",
                    F.expr("unix_micros(timestamp)").alias("ts_us"),
                    _lookup(positive).alias("weight"),
                )
                .where(F.col("weight").isNotNull())
                .where((F.col("ts_us") >= origin) & (F.col("ts_us") < as_of_us))
            )
            engagement = engagement.cache()
            try:
                view = f"engagement_{uuid.uuid4().hex[:12]}"
                engagement.createOrReplaceTempView(view)
                spark = self.session
                # The same three scans as tastebud.trending.detector.aggregate (DuckDB).
                recent = _to_arrow(
                    spark.sql(
                        f"""
                        SELECT item_id, count(DISTINCT user_id) AS users, sum(b) AS w,
                               sum(b * b) AS w2, CAST(sum(n) AS BIGINT) AS n
                        FROM (
                            SELECT item_id, user_id, ts_us div {HOUR_US} AS h,
                                   sum(weight) AS b, count(*) AS n
                            FROM {view} WHERE ts_us >= {recent_start}
                            GROUP BY item_id, user_id, ts_us div {HOUR_US}
                        ) GROUP BY item_id
                        """
                    ),
                    RECENT_SCHEMA,
                )
                from tastebud.trending.detector import supported_items

                supported = supported_items(recent, params)
                hourly = HOURLY_SCHEMA.empty_table()
                if supported.num_rows:
                    with self._staged_table(supported) as items:
                        frame = (
                            engagement.join(F.broadcast(items), "item_id", "left_semi")
                            .withColumn("h", F.expr(f"(ts_us - {origin}) div {HOUR_US}"))
                            .groupBy("item_id", "h")
                            .agg(F.sum("weight").alias("w"), F.count(F.lit(1)).alias("n"))
                        )
                        hourly = _to_arrow(frame, HOURLY_SCHEMA)
                by_hour = _to_arrow(
                    spark.sql(
                        f"""
                        SELECT (ts_us div {HOUR_US}) % 24 AS hod,
                               coalesce(sum(weight) FILTER (WHERE ts_us < {recent_start}), 0D)
                                   AS w,
                               max(ts_us) AS newest, min(ts_us) AS oldest, count(*) AS n,
                               count(*) FILTER (WHERE ts_us >= {recent_start}) AS recent_n
                        FROM {view} GROUP BY (ts_us div {HOUR_US}) % 24
                        """
                    ),
                    BY_HOUR_SCHEMA,
                )
                spark.catalog.dropTempView(view)
            finally:
                engagement.unpersist()
        return TrendingAggregates(recent=recent, hourly=hourly, by_hour=by_hour)

    def interaction_matrix(
        self,
        source: EventSource,
        end: datetime,
        *,
        options: MatrixOptions,
        event_types: Mapping[str, EventTypeSpec],
    ) -> InteractionMatrix:
        """Per (user, item, UTC day) parts on the executors (``tastebud.engines.matrix``),
        the sparse matrix assembled here: its size is the preferences', not the events'."""
        from pyspark.sql import functions as F

        from tastebud.data.interactions import InteractionsError
        from tastebud.engines.matrix import (
            MATRIX_PARTS,
            assemble,
            event_store_snapshot,
            unknown_types,
        )
        from tastebud.stores import EventQuery

        last_seq = source.events.last_seq()
        with self._events(source, None, end, columns=(*COLUMNS, "value")) as events:
            if events is None:
                raise InteractionsError("no interactions to learn from: the data is empty")
            rated = [name for name, spec in event_types.items() if spec.value == "rating"]
            is_rating = F.col("event_type").isin(rated) & F.col("value").isNotNull()
            rows = events.select(
                "user_id",
                "item_id",
                "event_type",
                F.col("value").cast("double").alias("value"),
                (F.expr("unix_micros(timestamp)").cast("double") / F.lit(1e6)).alias("seconds"),
                is_rating.alias("is_rating"),
            ).cache()
            try:
                summary = rows.agg(
                    F.max("seconds").alias("reference"),
                    F.max(F.when(F.col("is_rating"), F.col("value"))).alias("top_rating"),
                    F.count(F.lit(1)).alias("rows"),
                    F.collect_set("event_type").alias("types"),
                ).collect()[0]
                unknown_types(list(summary["types"]), set(event_types))
                reference = float(summary["reference"])
                weight = _weight({name: spec.weight for name, spec in event_types.items()})
                if summary["top_rating"] is not None:
                    scale = options.rating_max or float(summary["top_rating"])
                    if scale <= 0:
                        raise InteractionsError(
                            "ratings must have a positive maximum; set rating_max"
                        )
                    share = F.least(
                        F.greatest(F.col("value") / F.lit(scale), F.lit(0.0)), F.lit(1.0)
                    )
                    strength = F.when(share >= F.lit(options.liked_rating), share).otherwise(
                        F.lit(options.unliked_rating_weight) * share
                    )
                    weight = F.when(F.col("is_rating"), strength).otherwise(weight)
                if options.half_life_days is not None:
                    age_days = (F.lit(reference) - F.col("seconds")) / F.lit(86_400.0)
                    weight = weight * F.pow(
                        F.lit(0.5), age_days / F.lit(float(options.half_life_days))
                    )
                parts = (
                    rows.withColumn("w", weight)
                    .withColumn("day", F.floor(F.col("seconds") / F.lit(86_400.0)))
                    .groupBy("user_id", "item_id", "day")
                    .agg(
                        F.sum("w").alias("weight"),
                        F.sum(F.greatest(F.col("w"), F.lit(0.0))).alias("positive"),
                        F.min("seconds").alias("first"),
                        F.count(F.lit(1)).alias("rows"),
                    )
                )
                table = _to_arrow(parts, MATRIX_PARTS)
            finally:
                rows.unpersist()
        snapshot = event_store_snapshot(last_seq, int(summary["rows"]), EventQuery(end=end))
        return assemble(table, reference=reference, snapshot=snapshot, options=options)

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
        from tastebud.schemas import EVENT_SCHEMA

        suffix = uuid.uuid4().hex[:12]
        names = {"events": f"events_{suffix}", "items": f"items_{suffix}"}
        translated = spark_sql(query, names)
        session = self.session
        reads_events = names["events"] in translated
        with contextlib.ExitStack() as stack:
            if reads_events:
                events = stack.enter_context(
                    self._events(source, start, as_of, columns=tuple(EVENT_SCHEMA.names))
                )
                if events is None:
                    return None
                events.createOrReplaceTempView(names["events"])
            if items is not None and names["items"] in translated:
                frame = stack.enter_context(self._staged_table(items))
                frame.createOrReplaceTempView(names["items"])
            try:
                result = session.sql(translated, args={"as_of": as_of}).toArrow()
            except Exception as error:
                raise EngineError(f"the Spark job failed: {_first_line(error)}") from error
            finally:
                for name in names.values():
                    session.catalog.dropTempView(name)
        return result

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
        once, as a broadcast variable; ``func`` must be importable there.

        The partitions go through the RDD API (``mapPartitions``), not ``mapInArrow`` or
        ``mapInPandas``: those need pandas on every node, and with pandas installed DuckDB
        imports it in every tastebud process (half a second of CLI start-up)."""
        session = self.session
        count = partitions or max(2, session.sparkContext.defaultParallelism * 2)
        broadcast = session.sparkContext.broadcast(shared)
        table = pa.table({"id": pa.array(ids, pa.string())})
        try:
            with self._staged_table(table) as frame:
                rows = frame.repartition(count).rdd.mapPartitions(_Mapper(func, broadcast))
                try:
                    collected = rows.collect()
                except Exception as error:
                    raise EngineError(f"the Spark job failed: {_first_line(error)}") from error
            return pa.Table.from_pylist(collected, schema=schema)
        finally:
            broadcast.destroy()


class _Mapper:
    """A picklable ``mapPartitions`` function: rows of ids in, as Arrow batches of at most
    ``BATCH`` ids, to the job's function with its broadcast value; its rows out as dicts."""

    BATCH = 10_000

    def __init__(self, func: Callable[..., Iterator[pa.RecordBatch]], broadcast: Any) -> None:
        self.func = func
        self.broadcast = broadcast

    def __call__(self, rows: Iterator[Any]) -> Iterator[dict[str, Any]]:
        def batches() -> Iterator[pa.RecordBatch]:
            chunk: list[str] = []
            for row in rows:
                chunk.append(row[0])
                if len(chunk) >= self.BATCH:
                    yield pa.RecordBatch.from_pydict({"id": chunk})
                    chunk = []
            if chunk:
                yield pa.RecordBatch.from_pydict({"id": chunk})

        for out in self.func(batches(), self.broadcast.value):
            yield from out.to_pylist()


def spark_sql(query: str, tables: Mapping[str, str]) -> str:
    """A feature view's DuckDB SQL in Spark's dialect, through sqlglot (one query for both
    engines); ``tables`` renames its inputs (per-run temporary views). DuckDB's ``epoch``
    keeps microseconds, Spark's ``unix_timestamp`` drops them: it becomes
    ``unix_micros(x) / 1e6``."""
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:
        raise EngineError("Spark SQL views need sqlglot: pip install 'tastebud[spark]'") from None

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.TimeToUnix):
            micros = exp.Anonymous(this="unix_micros", expressions=[node.this])
            return exp.Div(this=micros, expression=exp.Literal.number("1e6"))
        if isinstance(node, exp.Table) and node.name in tables:
            renamed = exp.Table(this=exp.to_identifier(tables[node.name]))
            if node.alias:
                renamed.set("alias", node.args.get("alias"))
            return renamed
        return node

    try:
        tree = sqlglot.parse_one(query, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise EngineError(f"cannot translate the view's SQL for Spark: {error}") from None
    return tree.transform(rewrite).sql(dialect="spark")


def _lookup(weights: Mapping[str, float]) -> Column:
    """Each event's type weight, null for types not in ``weights`` (Python floats go to the
    JVM as exact doubles: no decimal literals to round)."""
    from pyspark.sql import functions as F

    if not weights:
        return F.lit(None).cast("double")
    pairs: list[Any] = []
    for name, value in weights.items():
        pairs += [F.lit(name), F.lit(float(value))]
    return F.create_map(*pairs)[F.col("event_type")]


def _weight(weights: Mapping[str, float]) -> Column:
    """Each event's type weight (0 for types no longer configured), as ``weight_column``."""
    from pyspark.sql import functions as F

    return F.coalesce(_lookup(weights), F.lit(0.0))


def _decay(end_us: int, half_life_days: float) -> Column:
    """2^(-age / half-life), age in days back from ``end_us``, as ``decay_column``."""
    from pyspark.sql import functions as F

    age_days = (F.lit(end_us) - F.expr("unix_micros(timestamp)")) / F.lit(float(MICROS_PER_DAY))
    return F.pow(F.lit(2.0), -F.greatest(age_days, F.lit(0.0)) / F.lit(float(half_life_days)))
