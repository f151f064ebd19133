"""``popularity``: every 5 minutes, each item's time-decayed weighted engagement over the
last 90 days; the cold-start and fallback list of serving.

The scores are ``tastebud.signals.popularity`` (the ``item_popularity`` feature view stores
the same); this job adds the support rules, the fills and the published lists.

Minimum support: a window with fewer than ``popularity_min_events`` events, or fewer than
``popularity_min_items`` items with a positive score (or fewer than the active catalog holds,
when that is smaller), is refused: one event must not turn the list into one item. When the
window has support but fewer than ``popularity_top_n`` items, the list is filled from a
window four times as long, then from all time (entries say ``fill``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.jobs.base import EmptyWindow, JobContext
from tastebud.jobs.definitions.common import refusal
from tastebud.jobs.outputs import (
    ALL,
    lookup_items,
    prune_versions,
    publish_lists,
    write_version,
)
from tastebud.signals.popularity import compute, score_window
from tastebud.stores import CatalogStore

PREFIX = "jobs/popularity"
POOL_FACTOR = 20
NAMESPACE = "popularity"
LONGER_WINDOW = 4  # the first fill: this many windows back


def top_lists(
    table: pa.Table, catalog: CatalogStore, top_n: int
) -> dict[str, list[dict[str, Any]]]:
    """The top ``top_n`` overall and per category, drawn from the ``POOL_FACTOR * top_n``
    most popular items (reading a whole catalog would cost more than the scoring). Items the
    catalog marks inactive and items with a score <= 0 (negative feedback) are left out."""
    ranked = table.filter(pc.greater(table.column("score"), 0))
    pool = ranked.slice(0, POOL_FACTOR * top_n)
    ids = pool.column("item_id").to_pylist()
    scores = pool.column("score").to_pylist()
    fills = pool.column("fill").to_pylist() if "fill" in pool.column_names else [None] * len(ids)
    known = lookup_items(catalog, ids)
    lists: dict[str, list[dict[str, Any]]] = {ALL: []}
    for item_id, score, filled in zip(ids, scores, fills, strict=True):
        item = known.get(item_id)
        if item is not None and not item.active:
            continue
        entry: dict[str, Any] = {"item_id": item_id, "score": score}
        if filled:
            entry["fill"] = filled
        if len(lists[ALL]) < top_n:
            lists[ALL].append(entry)
        for category in item.categories if item is not None else ():
            bucket = lists.setdefault(category, [])
            if len(bucket) < top_n:
                bucket.append(entry)
    return {
        name: [{**entry, "rank": rank} for rank, entry in enumerate(entries, start=1)]
        for name, entries in lists.items()
    }


def check_support(context: JobContext, table: pa.Table) -> None:
    """Refuse (InsufficientData) a window too thin to publish; see the module docstring."""
    settings = context.settings.jobs
    events = int(pc.sum(table.column("events")).as_py() or 0)
    positive = int(pc.sum(pc.greater(table.column("score"), 0)).as_py() or 0)
    active = context.stores.catalog.count_items(active=True)
    needed_items = (
        min(settings.popularity_min_items, active) if active else settings.popularity_min_items
    )
    if events >= settings.popularity_min_events and positive >= needed_items:
        return
    start = context.end - timedelta(days=settings.popularity_window_days)
    raise refusal(
        context,
        f"popularity: {events:,} events and {positive:,} items with a positive score between "
        f"{start.isoformat()} and {context.end.isoformat()}; publishing needs at least "
        f"{settings.popularity_min_events:,} events and {needed_items:,} items",
        namespace=NAMESPACE,
        details={
            "events": events,
            "items": positive,
            "min_events": settings.popularity_min_events,
            "min_items": needed_items,
        },
    )


def fill(context: JobContext, table: pa.Table, top_n: int) -> tuple[pa.Table, dict[str, int]]:
    """The window's ranking, then (while fewer than ``top_n`` items have a positive score)
    the items only a longer window and then all time have, each ranked by its plain weighted
    engagement. Adds ``fill`` (null for the window's own rows, else "N days" or "all time")."""
    window_days = context.settings.jobs.popularity_window_days
    parts = [table.append_column("fill", pa.nulls(table.num_rows, pa.string()))]
    seen = pa.chunked_array(table.column("item_id")).combine_chunks()
    count = int(pc.sum(pc.greater(table.column("score"), 0)).as_py() or 0)
    filled: dict[str, int] = {}
    longer = LONGER_WINDOW * window_days
    for days, label in [(longer, f"{longer:g} days"), (None, "all time")]:
        if count >= top_n:
            break
        try:
            extra = score_window(context, days, decay=False)
        except EmptyWindow:
            continue
        fresh = pc.and_(
            pc.invert(pc.is_in(extra.column("item_id"), value_set=seen)),
            pc.greater(extra.column("score"), 0),
        )
        extra = extra.filter(fresh).slice(0, top_n - count)
        if extra.num_rows == 0:
            continue
        parts.append(extra.append_column("fill", pa.array([label] * extra.num_rows, pa.string())))
        seen = pa.concat_arrays([seen, extra.column("item_id").combine_chunks()])
        count += extra.num_rows
        filled[label] = extra.num_rows
    combined = pa.concat_tables(parts)
    ranks = pa.array(np.arange(1, combined.num_rows + 1), pa.int64())
    return combined.set_column(combined.schema.get_field_index("rank"), "rank", ranks), filled


def run(context: JobContext) -> dict[str, Any]:
    try:
        table = compute(context)
    except EmptyWindow as error:
        raise refusal(
            context, f"popularity: {error}", namespace=NAMESPACE, reason="empty_window"
        ) from None
    check_support(context, table)
    top_n = context.settings.jobs.popularity_top_n
    table, filled = fill(context, table, top_n)
    lists = top_lists(table, context.stores.catalog, top_n)
    context.check()
    key = write_version(context.stores.artifacts, PREFIX, context.end, table)
    published = publish_lists(
        context, context.stores.online, NAMESPACE, lists, as_of=context.end, version=key
    )
    pruned = prune_versions(
        context.stores.artifacts, PREFIX, context.settings.jobs.keep_versions, key
    )
    window = table.filter(pc.is_null(table.column("fill")))
    return {
        "items": window.num_rows,
        "events": int(pc.sum(window.column("events")).as_py() or 0),
        "filled": filled,
        "version": key,
        "published": published,
        "lists": len(lists),
        "pruned": pruned,
    }
