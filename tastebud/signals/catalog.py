"""The catalog as one Arrow table: what the affinity signal and SQL feature views join
events with."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from tastebud.stores import CatalogStore


def catalog_table(catalog: CatalogStore) -> pa.Table:
    """item_id, categories, created_at, active for every catalog item (paged)."""
    ids: list[str] = []
    categories: list[list[str]] = []
    created: list[datetime | None] = []
    active: list[bool] = []
    for item in catalog.iter_items():
        ids.append(item.item_id)
        categories.append(list(item.categories))
        created.append(item.created_at)
        active.append(item.active)
    return pa.table(
        {
            "item_id": pa.array(ids, pa.string()),
            "categories": pa.array(categories, pa.list_(pa.string())),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "active": pa.array(active, pa.bool_()),
        }
    )
