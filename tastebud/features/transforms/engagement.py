"""Item popularity and user category affinity as feature views: the signals the jobs publish
(``tastebud.signals``), so the feature store and the published lists can never disagree on
what "popular" means."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tastebud.features.compute import TransformContext
from tastebud.signals import affinity, popularity
from tastebud.signals.window import InsufficientData


def item_popularity(context: TransformContext) -> pa.Table | None:
    try:
        table = popularity.compute(context.window)
    except InsufficientData:  # an empty or too thin window: no values
        return None
    return pa.table(
        {
            "entity_id": table.column("item_id"),
            "popularity_score": table.column("score"),
            "popularity_events": table.column("events"),
            "popularity_rank": table.column("rank"),
        }
    )


def user_category_affinity(context: TransformContext) -> pa.Table | None:
    try:
        table = affinity.compute(context.window)  # sorted by user, score desc, category
    except InsufficientData:  # an empty or too thin window: no values
        return None
    if table.num_rows == 0:
        return None
    top = context.settings.jobs.affinity_top_categories
    users: list[str] = []
    categories: list[list[str]] = []
    shares: list[list[float]] = []
    counts: list[int] = []
    for user, category, share in zip(
        table.column("user_id").to_pylist(),
        table.column("category").to_pylist(),
        table.column("share").to_pylist(),
        strict=True,
    ):
        if not users or users[-1] != user:
            users.append(user)
            categories.append([])
            shares.append([])
            counts.append(0)
        counts[-1] += 1
        if len(categories[-1]) < top:
            categories[-1].append(category)
            shares[-1].append(share)
    listed = pa.array(categories, pa.list_(pa.string()))
    return pa.table(
        {
            "entity_id": pa.array(users, pa.string()),
            "top_category": pc.list_element(listed, 0),
            "top_categories": listed,
            "top_category_shares": pa.array(shares, pa.list_(pa.float32())),
            "category_count": pa.array(counts, pa.int64()),
        }
    )
