"""``affinity``: daily, each user's time-decayed affinity to the catalog's categories.

affinity(user, category) = sum over the user's events on items of that category of
weight(event type) * 2^(-age / half-life); negative totals are dropped, and each user's
positive totals are also given as shares (they sum to 1) so users of different activity
compare. An item in several categories counts fully in each.

Minimum support: a window with fewer than ``affinity_min_events`` events is refused (the
published per-user affinities keep serving until their TTL).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tastebud.jobs.base import EmptyWindow, JobContext
from tastebud.jobs.definitions.common import engine, event_weights, refusal, source
from tastebud.jobs.outputs import catalog_table, prune_versions, write_version

PREFIX = "jobs/affinity"
KEY = "affinity:{user_id}"
TTL_SECONDS = 7 * 86_400.0  # a user who stops appearing fades out of the online store
PUBLISH_CHUNK = 10_000


def compute(context: JobContext) -> pa.Table:
    """user_id, category, score, share, rank (per user) over the window."""
    settings = context.settings.jobs
    end = context.end
    start = end - timedelta(days=settings.affinity_window_days)
    catalog = catalog_table(context.stores.catalog)
    flat = catalog.select(["item_id", "categories"]).flatten()
    parents = pc.list_parent_indices(catalog.column("categories"))
    item_categories = pa.table(
        {
            "item_id": pc.take(catalog.column("item_id"), parents),
            "category": pc.list_flatten(flat.column("categories")),
        }
    )
    totals, events = engine(context).category_scores(
        source(context),
        start,
        end,
        weights=event_weights(context.settings),
        half_life_days=settings.affinity_half_life_days,
        item_categories=item_categories,
    )
    if events == 0:
        raise EmptyWindow(f"no events between {start.isoformat()} and {end.isoformat()}")
    if events < settings.affinity_min_events:
        raise refusal(
            context,
            f"affinity: {events:,} events between {start.isoformat()} and {end.isoformat()}; "
            f"publishing needs at least {settings.affinity_min_events:,}",
            details={"events": events, "min_events": settings.affinity_min_events},
        )
    totals = totals.filter(pc.greater(totals.column("score"), 0))
    user_totals = totals.group_by("user_id").aggregate([("score", "sum")])
    totals = totals.join(user_totals, "user_id")
    share = pc.divide(totals.column("score"), totals.column("score_sum"))
    table = pa.table(
        {
            "user_id": totals.column("user_id"),
            "category": totals.column("category"),
            "score": pc.round(totals.column("score"), 6),
            "share": pc.round(share, 6),
        }
    )
    order = pc.sort_indices(
        table, [("user_id", "ascending"), ("score", "descending"), ("category", "ascending")]
    )
    return table.take(order)


def run(context: JobContext) -> dict[str, Any]:
    try:
        table = compute(context)
    except EmptyWindow as error:
        raise refusal(context, f"affinity: {error}", reason="empty_window") from None
    top = context.settings.jobs.affinity_top_categories
    context.check()
    key = write_version(context.stores.artifacts, PREFIX, context.end, table)
    documents: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        entries = documents.setdefault(row["user_id"], [])
        if len(entries) < top:
            entries.append(
                {"category": row["category"], "score": row["score"], "share": row["share"]}
            )
    as_of = context.end.isoformat()
    users = list(documents)
    for offset in range(0, len(users), PUBLISH_CHUNK):
        context.check()
        chunk = users[offset : offset + PUBLISH_CHUNK]
        context.stores.online.set_many(
            {
                KEY.format(user_id=user): json.dumps(
                    {"as_of": as_of, "version": key, "categories": documents[user]},
                    separators=(",", ":"),
                ).encode()
                for user in chunk
            },
            ttl_seconds=TTL_SECONDS,
        )
    prune_versions(context.stores.artifacts, PREFIX, context.settings.jobs.keep_versions, key)
    return {"users": len(users), "rows": table.num_rows, "version": key}
