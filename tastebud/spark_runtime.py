"""The process's one SparkSession, started on ``spark_master`` with ``spark_conf``: the Spark
engine's jobs and ``mllib-als`` share it, so a model trained from ``tastebud train`` honours
the same master, driver memory and properties as a job. Core layer (it imports nothing of
tastebud's but the settings) because both the engines and the models need it; the callers
turn ``SparkUnavailable`` into their own errors (EngineError, ModelError).

A session already running in the process is reused as it is: Spark reads the driver's memory
and most properties only when its JVM starts.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CONNECT_TIMEOUT = 3.0
# What tastebud always sets; ``spark_conf`` may override any of them but the local binds.
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
_SESSION_LOCK = threading.Lock()


class SparkUnavailable(RuntimeError):
    """pyspark, Java or the master is missing, or the session would not start; the message
    says what to do."""


def check_master(master: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast (SparkUnavailable) when a cluster master does not answer: Spark itself would
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
    raise SparkUnavailable(
        f"Spark master {master} is unreachable ({'; '.join(errors)}); check spark_master "
        "(TASTEBUD_SPARK_MASTER) or run the job with --engine local"
    )


def missing_runtime() -> str | None:
    """Why Spark cannot start in this process (None: it can): pyspark and a Java runtime."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'tastebud[spark]')"
    home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (home and (Path(home) / "bin" / "java").exists()):
        return (
            "no Java runtime (17+): install Debian's openjdk-17-jre-headless "
            "(scripts/install-java.sh) or set JAVA_HOME"
        )
    return None


def start_session(
    master: str, conf: Mapping[str, str] | None = None, app_name: str = "tastebud"
) -> SparkSession:
    """The process's SparkSession: the running one, else a new one on ``master`` with
    ``BASE_CONF`` and ``conf``. SparkUnavailable when pyspark, Java or the master is missing
    or Spark refuses to start (its first line)."""
    missing = missing_runtime()
    if missing is not None:
        raise SparkUnavailable(missing)
    from pyspark.sql import SparkSession  # lazy: pyspark is the optional extra [spark]

    check_master(master)
    with _SESSION_LOCK:
        existing = SparkSession._instantiatedSession
        if existing is not None and existing._sc._jsc is not None:
            return existing
        builder = SparkSession.builder.master(master).appName(app_name)
        for key, value in {**BASE_CONF, **(conf or {})}.items():
            builder = builder.config(key, value)
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
            raise SparkUnavailable(
                f"could not start Spark on {master}: {first_line(error)}"
            ) from None


def first_line(error: BaseException) -> str:
    """An error's first line, at most 500 characters: what a run history records."""
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__
