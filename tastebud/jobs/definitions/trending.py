"""``trending``: hourly, the trending detector over the recent and baseline windows; its
lists per category are what ``GET /v1/trending`` and the ranking pipeline read.

Before anything is published the freshness guard checks the newest event: a stalled event
pipeline must not freeze a stale list into place or, worse, make everything look "cold".
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pyarrow as pa

from tastebud.jobs.base import EmptyWindow, JobContext
from tastebud.jobs.definitions.common import event_weights, window_batches
from tastebud.jobs.outputs import lookup_items, prune_versions, publish_lists, write_version
from tastebud.observability import metrics
from tastebud.trending.detector import check_freshness, detect, engagement, window

PREFIX = "trending"
NAMESPACE = "trending"

DURATION = metrics.histogram(
    "trending",
    "job_duration",
    "seconds",
    "Wall time of a trending detection (read, detect, publish).",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CANDIDATES = metrics.gauge(
    "trending", "items_candidate", "count", "Items with enough support to be judged."
)
FINAL = metrics.gauge("trending", "items_final", "count", "Items the last detection flagged.")


def run(context: JobContext) -> dict[str, Any]:
    began = time.perf_counter()
    params = context.settings.trending
    as_of = context.end
    start, end = window(as_of, params)
    weights = event_weights(context.settings)
    parts = [engagement(batch, weights) for batch in window_batches(context, start, end)]
    if not parts or sum(part.num_rows for part in parts) == 0:
        raise EmptyWindow(
            f"no engagement between {start.isoformat()} and {end.isoformat()}: "
            "the previous trending list stays"
        )
    events = pa.concat_tables(parts)
    catalog = context.stores.catalog

    def created(ids: list[str]) -> dict[str, datetime | None]:
        return {key: item.created_at for key, item in lookup_items(catalog, ids).items()}

    def categories(ids: list[str]) -> dict[str, list[str]]:
        return {key: item.categories for key, item in lookup_items(catalog, ids).items()}

    result = detect(events, as_of, params, item_created=created, item_categories=categories)
    check_freshness(result.newest_event, as_of, params)
    CANDIDATES.set(result.candidate_count)
    FINAL.set(result.final_count)
    context.check()
    key = write_version(context.stores.artifacts, PREFIX, as_of, result.items)
    published = publish_lists(
        context,
        context.stores.online,
        NAMESPACE,
        result.lists,
        as_of=as_of,
        version=key,
        extra={"newest_event": result.newest_event.isoformat() if result.newest_event else None},
    )
    prune_versions(context.stores.artifacts, PREFIX, context.settings.jobs.keep_versions, key)
    seconds = time.perf_counter() - began
    DURATION.observe(seconds)
    return {
        "events": result.events,
        "candidates": result.candidate_count,
        "trending": result.final_count,
        "lists": len(result.lists),
        "version": key,
        "published": published,
        "seconds": round(seconds, 3),
    }
