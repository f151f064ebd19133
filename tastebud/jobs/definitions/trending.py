"""``trending``: hourly, the trending detector over the recent and baseline windows; its
lists per category are what ``GET /v1/trending`` and the ranking pipeline read.

Minimum support, checked before anything is published: the freshness guard (a stalled event
pipeline must not freeze a stale list into place or, worse, make everything look "cold"), at
least ``trending.min_recent_events`` positive events in the recent window, and events
reaching back ``min_history_hours`` before it (no baseline, no judgement). Short of that the
run is refused and the published list stays; when none was published yet, an empty list
saying why is (so ``GET /v1/trending`` explains itself rather than 404s). A run with support
that finds nothing publishes an empty list with a ``note`` saying what was judged.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

from tastebud.config import TrendingSettings
from tastebud.jobs.base import InsufficientData, JobContext
from tastebud.jobs.definitions.common import (
    engine,
    event_weights,
    from_micros,
    micros,
    refusal,
    source,
)
from tastebud.jobs.outputs import (
    index_key,
    lookup_items,
    prune_versions,
    publish_lists,
    write_version,
)
from tastebud.observability import metrics
from tastebud.trending.detector import (
    StaleDataError,
    TrendingAggregates,
    TrendingResult,
    check_freshness,
    detect_aggregates,
    window,
)

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


def check_support(context: JobContext, scans: TrendingAggregates) -> None:
    """Refuse (InsufficientData) a window the detector cannot judge; see the docstring."""
    params = context.settings.trending
    as_of = context.end
    newest_us = scans.newest_us
    newest = None if newest_us is None else from_micros(newest_us)
    try:
        check_freshness(newest, as_of, params)
    except StaleDataError as error:
        raise refusal(
            context, f"trending: {error}", namespace=NAMESPACE, reason="stale_data"
        ) from None
    recent_start = as_of - timedelta(hours=params.recent_hours)
    recent = scans.recent_events
    if recent < params.min_recent_events:
        raise refusal(
            context,
            f"trending: {recent:,} positive events between {recent_start.isoformat()} and "
            f"{as_of.isoformat()}; judging needs at least {params.min_recent_events:,}",
            namespace=NAMESPACE,
            details={"recent_events": recent, "min_recent_events": params.min_recent_events},
        )
    oldest_us = int(scans.oldest_us or 0)
    needed = recent_start - timedelta(hours=params.min_history_hours)
    if oldest_us > micros(needed):
        oldest = from_micros(oldest_us)
        raise refusal(
            context,
            f"trending: the events start at {oldest.isoformat()}; a baseline needs events from "
            f"{needed.isoformat()} ({params.min_history_hours:g} h before the recent "
            f"{params.recent_hours} h)",
            namespace=NAMESPACE,
            reason="short_history",
            details={"first_event": oldest.isoformat(), "needed_from": needed.isoformat()},
        )


def note(result: TrendingResult, params: TrendingSettings) -> str | None:
    """Why the list is empty, when it is."""
    if result.final_count:
        return None
    return (
        f"nothing is trending: {result.candidate_count:,} items had the support "
        f"({params.min_events} events from {params.min_users} users in the last "
        f"{params.recent_hours} h) and {params.min_history_hours:g} h of history to be judged; "
        f"none rose to z >= {params.z_threshold:g} with lift >= {params.min_lift:g}"
    )


def publish_placeholder(context: JobContext, refused: InsufficientData) -> bool:
    """When no trending list was ever published, publish an empty one saying why (a real
    result replaces it whatever its time; see ``publish_lists``)."""
    online = context.stores.online
    current = online.get(index_key(NAMESPACE))
    if current is not None and not json.loads(current).get("refused"):
        return False
    return publish_lists(
        context,
        online,
        NAMESPACE,
        {"*": []},
        as_of=context.end,
        version="",
        extra={"refused": refused.reason, "note": str(refused)},
    )


def _require_engagement(
    context: JobContext, scans: TrendingAggregates, start: datetime, end: datetime
) -> None:
    """Refuse a window with no engagement, or too little to judge, after publishing the
    empty placeholder lists (so serving says why there is no trending list)."""
    try:
        if scans.events == 0:
            raise refusal(
                context,
                f"trending: no engagement between {start.isoformat()} and {end.isoformat()}",
                namespace=NAMESPACE,
                reason="empty_window",
            )
        check_support(context, scans)
    except InsufficientData as refused:
        refused.details["placeholder_published"] = publish_placeholder(context, refused)
        raise


def _detect_with_catalog(
    context: JobContext, scans: TrendingAggregates, as_of: datetime, params: TrendingSettings
) -> TrendingResult:
    """Detect the trending items, reading their creation times and categories from the
    catalog."""
    catalog = context.stores.catalog

    def created(ids: list[str]) -> dict[str, datetime | None]:
        return {key: item.created_at for key, item in lookup_items(catalog, ids).items()}

    def categories(ids: list[str]) -> dict[str, list[str]]:
        return {key: item.categories for key, item in lookup_items(catalog, ids).items()}

    return detect_aggregates(scans, as_of, params, item_created=created, item_categories=categories)


def run(context: JobContext) -> dict[str, Any]:
    began = time.perf_counter()
    params = context.settings.trending
    as_of = context.end
    start, end = window(as_of, params)
    scans = engine(context).trending_aggregates(
        source(context), weights=event_weights(context.settings), as_of=as_of, params=params
    )
    _require_engagement(context, scans, start, end)
    result = _detect_with_catalog(context, scans, as_of, params)
    CANDIDATES.set(result.candidate_count)
    FINAL.set(result.final_count)
    explanation = note(result, params)
    context.check()
    key = write_version(context.stores.artifacts, PREFIX, as_of, result.items)
    published = publish_lists(
        context,
        context.stores.online,
        NAMESPACE,
        result.lists,
        as_of=as_of,
        version=key,
        extra={
            "newest_event": result.newest_event.isoformat() if result.newest_event else None,
            "note": explanation,
        },
    )
    prune_versions(context.stores.artifacts, PREFIX, context.settings.jobs.keep_versions, key)
    seconds = time.perf_counter() - began
    DURATION.observe(seconds)
    summary: dict[str, Any] = {
        "events": result.events,
        "candidates": result.candidate_count,
        "trending": result.final_count,
        "lists": len(result.lists),
        "version": key,
        "published": published,
        "seconds": round(seconds, 3),
    }
    if explanation:
        summary["note"] = explanation
    return summary
