"""The process's SparkSession (``tastebud.spark_runtime``), and Spark's failures as
EngineErrors: a master that does not answer fails fast, a missing pyspark or Java says what
to install, and a failure on the executors becomes its first line (not a JVM stack trace)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

from tastebud import spark_runtime
from tastebud.engines.base import EngineError
from tastebud.spark_runtime import CONNECT_TIMEOUT, SparkUnavailable, first_line, start_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def check_master(master: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast (EngineError) when a cluster master does not answer (``spark_session``)."""
    try:
        spark_runtime.check_master(master, timeout)
    except SparkUnavailable as error:
        raise EngineError(str(error)) from None


def spark_session(master: str, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The process's SparkSession on ``master`` with ``conf`` (``tastebud.spark_runtime``; an
    active one is reused: tests start one per test session). EngineError when pyspark, Java
    or the master is missing."""
    try:
        return start_session(master, conf, app_name="tastebud-jobs")
    except SparkUnavailable as error:
        raise EngineError(str(error)) from None


def job_failed(error: BaseException) -> EngineError:
    """A failure on the executors (or in planning) as the EngineError a job records."""
    return EngineError(f"the Spark job failed: {first_line(error)}")


def to_arrow(frame: DataFrame, schema: pa.Schema) -> pa.Table:
    """Collect a (small) result through Arrow, in ``schema``'s types; a failure on the
    executors becomes an EngineError with its first line."""
    try:
        table = frame.toArrow()
    except Exception as error:
        raise job_failed(error) from error
    return table.select(schema.names).cast(schema)
