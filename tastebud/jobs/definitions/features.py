"""The feature-store jobs: ``materialize`` (every 10 minutes: snapshot as of the interval's
end, then offline -> online), ``backfill`` (manual: offline snapshots over a date range) and
``feature-parity`` (daily: sampled online vs offline values)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tastebud.features.materialize import SUPPORT_DAYS, backfill, materialize, recent_support
from tastebud.features.parity import run_parity
from tastebud.features.store import open_feature_store
from tastebud.jobs.base import JobContext
from tastebud.jobs.definitions.common import refusal

PARITY_PREFIX = "features/parity"


def materialize_run(context: JobContext) -> dict[str, Any]:
    needed = context.settings.features.min_recent_events
    events = recent_support(context.stores, context.end)
    if events < needed:
        raise refusal(
            context,
            f"materialize: {events:,} events in the {SUPPORT_DAYS} days before "
            f"{context.end.isoformat()}; materializing needs at least {needed:,} (the online "
            "features keep their values until their TTL)",
            details={"events": events, "min_events": needed},
        )
    with open_feature_store(context.settings, context.stores.online) as features:
        views = materialize(
            features,
            context.settings,
            context.stores,
            start=context.start,
            end=context.end,
            job=context,
        )
    return {"views": views}


def backfill_run(context: JobContext) -> dict[str, Any]:
    step = timedelta(hours=context.settings.features.backfill_step_hours)
    with open_feature_store(context.settings, context.stores.online) as features:
        return backfill(
            features,
            context.settings,
            context.stores,
            start=context.start,
            end=context.end,
            step=step,
            job=context,
        )


def parity_run(context: JobContext) -> dict[str, Any]:
    options = context.settings.features
    with open_feature_store(context.settings, context.stores.online) as features:
        report = run_parity(
            features, sample=options.parity_sample, tolerance=options.parity_tolerance
        )
    key = f"{PARITY_PREFIX}/{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    context.stores.artifacts.put_bytes(key, json.dumps(report, indent=1).encode())
    return {
        "sampled": report["sampled"],
        "diffs": report["diffs"],
        "diff_rate": report["diff_rate"],
        "report": key,
    }
