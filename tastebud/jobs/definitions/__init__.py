"""Every job tastebud runs, in one place: one row of ``JOBS`` a job (name, schedule,
timeout, description and the function that runs it); the job's module is imported when it
first runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any

from tastebud.jobs.base import JobContext, JobFunction
from tastebud.jobs.roster import JobRegistry
from tastebud.jobs.schedules import Every, Schedule
from tastebud.stores.retry import RetryPolicy

if TYPE_CHECKING:
    from tastebud.config import Settings


def _deferred(module: str, function: str = "run") -> JobFunction:
    """A job function imported on its first call: listing and scheduling jobs needs their
    names and schedules only, and the jobs import numpy, implicit, scikit-learn... (CLI
    start-up budget, docs/benchmarks.md)."""

    def run(context: JobContext) -> dict[str, Any]:
        job: JobFunction = getattr(import_module(f"{__name__}.{module}"), function)
        return job(context)

    run.__qualname__ = run.__name__ = f"{module}.{function}"
    return run


@dataclass(frozen=True)
class _Job:
    """One row of the roster: a job's name, when it runs, how long it may take, what it
    does, and the function (``module.function`` under ``definitions``) that runs it."""

    name: str
    schedule: str
    timeout_seconds: float
    description: str
    module: str
    function: str = "run"


# In the order ``tastebud jobs list`` shows them.
JOBS: tuple[_Job, ...] = (
    _Job(
        "popularity",
        "*/5 * * * *",
        240,
        "Time-decayed weighted engagement per item over 90 days.",
        "popularity",
    ),
    _Job(
        "affinity",
        "30 2 * * *",
        1800,
        "Each user's time-decayed affinity to categories.",
        "affinity",
    ),
    _Job(
        "train",
        "0 3 * * *",
        3 * 3600,
        "Train, gate against production, register and promote.",
        "train",
    ),
    _Job("embed", "15 * * * *", 1800, "Embed items added since the last run.", "embed"),
    _Job(
        "index",
        "30 4 * * *",
        1800,
        "Rebuild the ANN index and swap it in without downtime.",
        "index",
    ),
    _Job(
        "materialize",
        "*/10 * * * *",
        600,
        "Materialize features to the online store.",
        "features",
        "materialize_run",
    ),
    _Job(
        "backfill",
        "manual",
        6 * 3600,
        "Feature backfill over a date range.",
        "features",
        "backfill_run",
    ),
    _Job("dlq-retry", "*/15 * * * *", 600, "Re-ingest events from the DLQ.", "dlq_retry"),
    _Job(
        "trending",
        "0 * * * *",
        600,
        "Trending items per category (z-score against a seasonal baseline).",
        "trending",
    ),
    _Job(
        "recommendations",
        "10 * * * *",
        3600,
        "Rank every known user's default list ahead of time for serving.",
        "recommendations",
    ),
    _Job(
        "push",
        "*/15 * * * *",
        900,
        "Web push to opted-in listeners: new items matching their taste, trending.",
        "push",
    ),
    _Job(
        "quality",
        "20 * * * *",
        900,
        "Data-quality checks: schema, freshness, completeness, volume, drift.",
        "quality",
    ),
    _Job(
        "monitor",
        "40 * * * *",
        1800,
        "Model monitoring: offline NDCG@10 against training time, score drift, age.",
        "monitor",
    ),
    _Job(
        "retrain",
        "50 * * * *",
        4 * 3600,
        "Retraining triggers: a firing one runs train (with a cooldown).",
        "monitor",
        "retrain",
    ),
    _Job(
        "guardrails",
        "5m",
        240,
        "Guardrail metrics of running experiments: a breach pauses the variant and alerts.",
        "guardrails",
    ),
    _Job(
        "rollout",
        "*/5 * * * *",
        600,
        "Canary rollouts: roll back on a guardrail breach, step up, promote at the end.",
        "rollout",
    ),
    _Job(
        "exposures-compact",
        "25 * * * *",
        1800,
        "Merge the embedded exposure log's small files into a few per day.",
        "exposures",
    ),
    _Job(
        "feature-parity",
        "0 5 * * *",
        1800,
        "Sampled online vs offline feature values: diff rate (target < 2%).",
        "features",
        "parity_run",
    ),
)


def build_registry(
    retry: RetryPolicy | None = None, settings: Settings | None = None
) -> JobRegistry:
    """Every job of ``JOBS``; ``retry`` overrides every job's policy (from settings), and
    ``settings`` the schedules it sets (``experiments.guardrails_minutes``)."""
    policy = retry or RetryPolicy()
    registry = JobRegistry()
    for job in JOBS:
        registry.register(
            job.name,
            _deferred(job.module, job.function),
            schedule=_schedule(job, settings),
            timeout_seconds=job.timeout_seconds,
            retry=policy,
            description=job.description,
        )
    return registry


def _schedule(job: _Job, settings: Settings | None) -> str | Schedule:
    """The row's schedule, or the one settings give it."""
    if job.name == "guardrails" and settings is not None:
        return Every(timedelta(minutes=settings.experiments.guardrails_minutes))
    return job.schedule
