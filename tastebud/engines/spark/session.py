"""The process's SparkSession, and Spark's failures as EngineErrors: a master that does not
answer fails fast, a missing pyspark or Java says what to install, and a failure on the
executors becomes its first line (not a JVM stack trace)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow as pa

from tastebud.engines.base import EngineError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CONNECT_TIMEOUT = 3.0
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
        from pyspark.sql import SparkSession  # lazy: pyspark is the optional extra [spark]
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
            raise EngineError(f"could not start Spark on {master}: {first_line(error)}") from None


def _java_home() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(home) and (Path(home) / "bin" / "java").exists()


def first_line(error: BaseException) -> str:
    """An error's first line, at most 500 characters: what a run history records."""
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__


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
