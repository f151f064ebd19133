"""Materialization (offline -> online) and backfill (sources -> offline).

``materialize(start, end)`` computes each view's snapshot as of ``end`` into the offline
store, then publishes the newest offline value of every entity stamped in
``[watermark - overlap, end]`` to the online store, invalidates the view's caches and moves
the view's persisted watermark to ``end``. The overlap re-reads values that arrived late in
the offline store (a backfill, a PostgreSQL writer committing out of order). Idempotent: a
rerun of an interval rewrites the same snapshot and the same online values. An interval older
than the watermark still refreshes the offline snapshot but never overwrites newer online
values.

Online values expire ``ttl_seconds`` after their event time *measured from the
materialization's end*, not the wall clock: a store whose data ends in the past
(materialized ``--as-of`` its newest event) then serves its features for a full TTL instead
of none. ``recent_support`` is what a materialization needs first: events in the
``SUPPORT_DAYS`` before its end (``features.min_recent_events``); with fewer, every
event-based view would come out empty, so the job refuses rather than move the watermark.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tastebud.config import Settings
from tastebud.features.compute import compute_view, context_for
from tastebud.features.serving import FRESHNESS
from tastebud.features.store import FeatureStore
from tastebud.features.views import FeatureView
from tastebud.observability import get_logger
from tastebud.signals.window import Window
from tastebud.stores import EventQuery, Stores

log = get_logger("tastebud.features")
ONE_MICROSECOND = timedelta(microseconds=1)
SUPPORT_DAYS = 30  # the user_engagement window: the shortest that makes per-user features


def recent_support(stores: Stores, end: datetime) -> int:
    """Events in the ``SUPPORT_DAYS`` before ``end``."""
    return stores.events.count(EventQuery(start=end - timedelta(days=SUPPORT_DAYS), end=end))


def watermark_key(view: FeatureView) -> str:
    return f"watermark:{view.name}:{view.version}"


def watermark(features: FeatureStore, view: FeatureView) -> datetime | None:
    state = features.offline.get_state(watermark_key(view))
    return datetime.fromisoformat(state["end"]) if state else None


def select_views(features: FeatureStore, names: Sequence[str] | None) -> list[FeatureView]:
    ordered = features.registry.ordered()
    if not names:
        return ordered
    unknown = sorted(set(names) - set(features.registry.views))
    if unknown:
        raise KeyError(f"unknown feature views: {', '.join(unknown)}")
    return [view for view in ordered if view.name in names]


def compute_snapshot(
    features: FeatureStore,
    view: FeatureView,
    as_of: datetime,
    settings: Settings,
    stores: Stores,
    job: Window | None = None,
) -> int:
    """Compute and store the view's snapshot as of ``as_of``; returns its row count."""
    table = compute_view(context_for(view, as_of, settings, stores, job))
    if job is not None:
        job.check()
    if table.num_rows == 0:
        return 0
    return features.offline.write(view, table, as_of)


def materialize(
    features: FeatureStore,
    settings: Settings,
    stores: Stores,
    *,
    end: datetime,
    start: datetime | None = None,
    views: Sequence[str] | None = None,
    compute: bool = True,
    job: Window | None = None,
) -> dict[str, Any]:
    overlap = timedelta(seconds=settings.features.overlap_seconds)
    report: dict[str, Any] = {}
    for view in select_views(features, views):
        computed = compute_snapshot(features, view, end, settings, stores, job) if compute else None
        retention = timedelta(days=settings.features.offline_retention_days)
        pruned = features.offline.prune(view, end - retention)
        mark = watermark(features, view)
        if mark is not None and end < mark:
            report[view.name] = {
                "computed": computed,
                "pruned": pruned,
                "published": 0,
                "watermark": str(mark),
            }
            log.info("older_interval_not_published", view=view.name, watermark=str(mark))
            continue
        oldest = end - timedelta(seconds=view.ttl_seconds)
        candidates = [moment for moment in (start, mark) if moment is not None]
        since = max(min(candidates) - overlap if candidates else oldest, oldest)
        table = features.offline.latest(view, start=since, end=end + ONE_MICROSECOND)
        if job is not None:
            job.check()  # an abandoned attempt must not publish
        published = features.online.write(view, table, now=end)
        features.online.invalidate(view)
        materialized_at = datetime.now(UTC)
        state = {"end": end.isoformat(), "materialized_at": materialized_at.isoformat()}
        features.offline.set_state(watermark_key(view), state)
        features.online.set_meta(view, {**state, "version": view.version, "rows": published})
        FRESHNESS.labels(view=view.name).set(0.0)
        report[view.name] = {
            "computed": computed,
            "pruned": pruned,
            "published": published,
            "read_from": since.isoformat(),
            "watermark": end.isoformat(),
        }
    return report


def snapshot_times(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    """``start + step, start + 2 step, ...`` up to and including ``end``."""
    if step <= timedelta(0):
        raise ValueError("the backfill step must be positive")
    moment = start + step
    while moment < end:
        yield moment
        moment += step
    yield end


def backfill(
    features: FeatureStore,
    settings: Settings,
    stores: Stores,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    views: Sequence[str] | None = None,
    job: Window | None = None,
) -> dict[str, Any]:
    """Offline snapshots at every ``step`` over ``(start, end]`` (for training data); the
    online store is left to materialization."""
    if end <= start:
        raise ValueError("the backfill end must be after its start")
    chosen = select_views(features, views)
    rows = {view.name: 0 for view in chosen}
    moments = list(snapshot_times(start, end, step))
    for moment in moments:
        for view in chosen:
            rows[view.name] += compute_snapshot(features, view, moment, settings, stores, job)
    return {"snapshots": len(moments), "rows": rows}
