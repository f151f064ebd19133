"""Every job tastebud runs, in one place. A planned job becomes runnable with one line:
``registry.register("train", train.run)`` (schedule, timeout and retries stay as planned)."""

from __future__ import annotations

from tastebud.jobs.definitions import (
    affinity,
    dlq_retry,
    embed,
    features,
    index,
    popularity,
    push,
    recommendations,
    train,
    trending,
)
from tastebud.jobs.registry import JobRegistry
from tastebud.jobs.retry import RetryPolicy


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
    registry.register("popularity", popularity.run)
    registry.register("affinity", affinity.run)
    registry.register("trending", trending.run)
    registry.register("train", train.run)
    registry.register("dlq-retry", dlq_retry.run)
    registry.register("embed", embed.run)
    registry.register("index", index.run)
    registry.register("materialize", features.materialize_run)
    registry.register("backfill", features.backfill_run)
    registry.register(
        "recommendations",
        recommendations.run,
        schedule="10 * * * *",
        timeout_seconds=3600,
        retry=policy,
        description="Rank every known user's default list ahead of time for serving.",
    )
    registry.register(
        "push",
        push.run,
        schedule="*/15 * * * *",
        timeout_seconds=900,
        retry=policy,
        description="Web push to opted-in listeners: new items matching their taste, trending.",
    )
    registry.register(
        "feature-parity",
        features.parity_run,
        schedule="0 5 * * *",
        timeout_seconds=1800,
        retry=policy,
        description="Sampled online vs offline feature values: diff rate (target < 2%).",
    )
    return registry
