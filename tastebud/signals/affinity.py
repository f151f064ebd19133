"""Users' category affinity: each user's time-decayed affinity to the catalog's categories.

affinity(user, category) = sum over the user's events on items of that category of
weight(event type) * 2^(-age / half-life); negative totals are dropped, and each user's
positive totals are also given as shares (they sum to 1) so users of different activity
compare. An item in several categories counts fully in each. The ``affinity`` job
publishes it; the ``user_category_affinity`` feature view stores it.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from tastebud.signals.catalog import catalog_table
from tastebud.signals.window import (
    EmptyWindow,
    InsufficientData,
    Window,
    engine,
    event_weights,
    source,
)


def compute(window: Window) -> pa.Table:
    """user_id, category, score, share over the affinity window, sorted by user, score
    (descending), category. EmptyWindow without events; InsufficientData with fewer than
    ``affinity_min_events``."""
    settings = window.settings.jobs
    end = window.end
    start = end - timedelta(days=settings.affinity_window_days)
    catalog = catalog_table(window.stores.catalog)
    flat = catalog.select(["item_id", "categories"]).flatten()
    parents = pc.list_parent_indices(catalog.column("categories"))
    item_categories = pa.table(
        {
            "item_id": pc.take(catalog.column("item_id"), parents),
            "category": pc.list_flatten(flat.column("categories")),
        }
    )
    totals, events = engine(window).category_scores(
        source(window),
        start,
        end,
        weights=event_weights(window.settings),
        half_life_days=settings.affinity_half_life_days,
        item_categories=item_categories,
    )
    if events == 0:
        raise EmptyWindow(f"no events between {start.isoformat()} and {end.isoformat()}")
    if events < settings.affinity_min_events:
        raise InsufficientData(
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
