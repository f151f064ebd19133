"""Where batch work runs: ``local`` (this process; the default) or ``spark`` (Apache Spark,
the optional extra ``tastebud[spark]``), chosen per job by ``[jobs] engine`` /
``[jobs] engines`` or ``tastebud jobs run NAME --engine``. pyspark is imported only inside
``tastebud.engines.spark``'s functions, and only when a job runs there.

Layer (docs/architecture.md): may import ``models``, ``evaluation``, ``trending`` (the
detector's aggregates), ``data``, ``stores`` and the core; never ``signals`` or anything
above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tastebud.engines.base import Engine, EngineError, EventSource

if TYPE_CHECKING:
    from tastebud.config import Settings

__all__ = [
    "ENGINES",
    "SPARK_JOBS",
    "Engine",
    "EngineError",
    "EventSource",
    "engine_name",
    "open_engine",
]

ENGINES = ("local", "spark")
#: The jobs with a Spark implementation; the others always run locally. In ``materialize``
#: and ``backfill`` the job-backed and SQL feature views run on the job's engine (Python
#: views in the job). In ``train`` the final fit's interaction matrix is built there.
SPARK_JOBS = frozenset(
    {"popularity", "affinity", "trending", "materialize", "backfill", "recommendations", "train"}
)


def engine_name(settings: Settings, job: str) -> str:
    """The engine ``job`` runs on: its own ``[jobs] engines`` entry, else ``[jobs] engine``
    (a job without a Spark implementation runs locally whatever the default says)."""
    chosen = settings.jobs.engines.get(job)
    if chosen is not None:
        return chosen
    return settings.jobs.engine if job in SPARK_JOBS else "local"


def open_engine(settings: Settings, name: str) -> Engine:
    """The engine called ``name``; EngineError when it cannot run here."""
    if name == "local":
        # lazy: the local engine loads the stores (~0.4 s): only when a job opens it
        from tastebud.engines.local import LocalEngine

        return LocalEngine()
    if name == "spark":
        # lazy: the Spark engine (fsspec; pyspark inside) loads only when a job runs there
        from tastebud.engines.spark import SparkEngine

        return SparkEngine.from_settings(settings)
    raise EngineError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
