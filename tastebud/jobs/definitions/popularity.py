"""``popularity``: every 5 minutes, each item's time-decayed weighted engagement over the
last 90 days; the cold-start and fallback list of serving.

score(item) = sum over its events of weight(event type) * 2^(-age / half-life), age measured
from the interval's end, so the same interval always gives the same scores.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.jobs.base import EmptyWindow, JobContext
from tastebud.jobs.definitions.common import (
    decay_column,
    event_weights,
    micros,
    weight_column,
    window_batches,
)
from tastebud.jobs.outputs import (
    ALL,
    lookup_items,
    prune_versions,
    publish_lists,
    write_version,
)
from tastebud.stores import CatalogStore

PREFIX = "jobs/popularity"
POOL_FACTOR = 20
NAMESPACE = "popularity"


def compute(context: JobContext) -> pa.Table:
    """item_id, score, events, rank over the window ending at the interval's end."""
    settings = context.settings.jobs
    end = context.end
    start = end - timedelta(days=settings.popularity_window_days)
    weights = event_weights(context.settings)
    end_us = micros(end)
    partials = []
    for batch in window_batches(context, start, end):
        score = weight_column(batch, weights) * decay_column(
            batch, end_us, settings.popularity_half_life_days
        )
        part = pa.table({"item_id": batch.column("item_id"), "score": score})
        partials.append(part.group_by("item_id").aggregate([("score", "sum"), ("score", "count")]))
    if not partials:
        raise EmptyWindow(
            f"no events between {start.isoformat()} and {end.isoformat()}: popularity unchanged"
        )
    combined = (
        pa.concat_tables(partials)
        .group_by("item_id")
        .aggregate([("score_sum", "sum"), ("score_count", "sum")])
    )
    table = pa.table(
        {
            "item_id": combined.column("item_id"),
            "score": pc.round(combined.column("score_sum_sum"), 6),
            "events": pc.cast(combined.column("score_count_sum"), pa.int64()),
        }
    )
    order = pc.sort_indices(table, [("score", "descending"), ("item_id", "ascending")])
    table = table.take(order)
    return table.append_column("rank", pa.array(np.arange(1, table.num_rows + 1), pa.int64()))


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
    known = lookup_items(catalog, ids)
    lists: dict[str, list[dict[str, Any]]] = {ALL: []}
    for item_id, score in zip(ids, scores, strict=True):
        item = known.get(item_id)
        if item is not None and not item.active:
            continue
        entry = {"item_id": item_id, "score": score}
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


def run(context: JobContext) -> dict[str, Any]:
    table = compute(context)
    lists = top_lists(table, context.stores.catalog, context.settings.jobs.popularity_top_n)
    context.check()
    key = write_version(context.stores.artifacts, PREFIX, context.end, table)
    published = publish_lists(
        context, context.stores.online, NAMESPACE, lists, as_of=context.end, version=key
    )
    pruned = prune_versions(
        context.stores.artifacts, PREFIX, context.settings.jobs.keep_versions, key
    )
    return {
        "items": table.num_rows,
        "events": int(pc.sum(table.column("events")).as_py() or 0),
        "version": key,
        "published": published,
        "lists": len(lists),
        "pruned": pruned,
    }
