"""Every job tastebud runs, in one place. A planned job becomes runnable with one line,
``registry.register("train", _deferred("train"))``: schedule, timeout and retries stay as
planned, and the job's module is imported when it first runs."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from tastebud.jobs.base import JobContext, JobFunction
from tastebud.jobs.roster import JobRegistry
from tastebud.stores.retry import RetryPolicy


def _deferred(module: str, function: str = "run") -> JobFunction:
    """A job function imported on its first call: listing and scheduling jobs needs their
    names and schedules only, and the jobs import numpy, implicit, scikit-learn... (CLI
    start-up budget, docs/benchmarks.md)."""

    def run(context: JobContext) -> dict[str, Any]:
        job: JobFunction = getattr(import_module(f"{__name__}.{module}"), function)
        return job(context)

    run.__qualname__ = run.__name__ = f"{module}.{function}"
    return run


def build_registry(retry: RetryPolicy | None = None) -> JobRegistry:
    """The nine jobs of issue 8; ``retry`` overrides every job's policy (from settings)."""
    policy = retry or RetryPolicy()
    registry = JobRegistry()
    registry.planned(
        "popularity",
        "*/5 * * * *",
        "",
        timeout_seconds=240,
        retry=policy,
        description="Time-decayed weighted engagement per item over 90 days.",
    )
    registry.planned(
        "affinity",
        "30 2 * * *",
        "",
        timeout_seconds=1800,
        retry=policy,
        description="Each user's time-decayed affinity to categories.",
    )
    registry.planned(
        "train",
        "0 3 * * *",
        "",
        timeout_seconds=3 * 3600,
        retry=policy,
        description="Train, gate against production, register and promote.",
    )
    registry.planned(
        "embed",
        "15 * * * *",
        "content embeddings land with the content-model issue",
        timeout_seconds=1800,
        retry=policy,
        description="Embed items added since the last run.",
    )
    registry.planned(
        "index",
        "30 4 * * *",
        "",
        timeout_seconds=1800,
        retry=policy,
        description="Rebuild the ANN index and swap it in without downtime.",
    )
    registry.planned(
        "materialize",
        "*/10 * * * *",
        "the feature store lands with issue 7",
        timeout_seconds=600,
        retry=policy,
        description="Materialize features to the online store.",
    )
    registry.planned(
        "backfill",
        "manual",
        "the feature store lands with issue 7",
        timeout_seconds=6 * 3600,
        retry=policy,
        description="Feature backfill over a date range.",
    )
    registry.planned(
        "dlq-retry",
        "*/15 * * * *",
        "",
        timeout_seconds=600,
        retry=policy,
        description="Re-ingest events from the DLQ.",
    )
    registry.planned(
        "trending",
        "0 * * * *",
        "",
        timeout_seconds=600,
        retry=policy,
        description="Trending items per category (z-score against a seasonal baseline).",
    )
    # Available now:
    registry.register("popularity", _deferred("popularity"))
    registry.register("affinity", _deferred("affinity"))
    registry.register("trending", _deferred("trending"))
    registry.register("train", _deferred("train"))
    registry.register("dlq-retry", _deferred("dlq_retry"))
    registry.register("embed", _deferred("embed"))
    registry.register("index", _deferred("index"))
    registry.register("materialize", _deferred("features", "materialize_run"))
    registry.register("backfill", _deferred("features", "backfill_run"))
    registry.register(
        "recommendations",
        _deferred("recommendations"),
        schedule="10 * * * *",
        timeout_seconds=3600,
        retry=policy,
        description="Rank every known user's default list ahead of time for serving.",
    )
    registry.register(
        "push",
        _deferred("push", "run"),
        schedule="*/15 * * * *",
        timeout_seconds=900,
        retry=policy,
        description="Web push to opted-in listeners: new items matching their taste, trending.",
    )
    registry.register(
        "quality",
        _deferred("quality"),
        schedule="20 * * * *",
        timeout_seconds=900,
        retry=policy,
        description="Data-quality checks: schema, freshness, completeness, volume, drift.",
    )
    registry.register(
        "monitor",
        _deferred("monitor"),
        schedule="40 * * * *",
        timeout_seconds=1800,
        retry=policy,
        description="Model monitoring: offline NDCG@10 against training time, score drift, age.",
    )
    registry.register(
        "retrain",
        _deferred("monitor", "retrain"),
        schedule="50 * * * *",
        timeout_seconds=4 * 3600,
        retry=policy,
        description="Retraining triggers: a firing one runs train (with a cooldown).",
    )
    registry.register(
        "feature-parity",
        _deferred("features", "parity_run"),
        schedule="0 5 * * *",
        timeout_seconds=1800,
        retry=policy,
        description="Sampled online vs offline feature values: diff rate (target < 2%).",
    )
    return registry
