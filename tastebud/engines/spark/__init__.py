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
pyspark is imported only inside functions here, and only when a job runs on Spark.

Modules: ``session`` (the SparkSession, Spark's failures as EngineErrors), ``engine`` (the
event log as a DataFrame, the aggregations, work mapped over ids), ``trending`` (the
detector's scans), ``matrix`` (the training matrix's parts), ``sql`` (feature views' SQL
translated), ``columns`` (the per-event weight and decay).
"""

from __future__ import annotations

from tastebud.engines.spark.engine import SparkEngine
from tastebud.engines.spark.session import check_master, spark_session
from tastebud.engines.spark.sql import spark_sql

__all__ = ["SparkEngine", "check_master", "spark_session", "spark_sql"]
