"""Small generated interaction logs with planted taste clusters, for model tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tastebud.data.interactions import InteractionLog, from_table

DAY_US = 86_400 * 1_000_000
START_US = 1_700_000_000 * 1_000_000


def clustered_table(
    n_users: int = 120,
    n_items: int = 60,
    clusters: int = 3,
    per_user: int = 12,
    seed: int = 0,
    ratings: bool = True,
) -> pa.Table:
    """Users of cluster c interact mostly (90%) with items of cluster c and rate them high;
    the odd out-of-cluster item gets a low rating. Timestamps rise per user."""
    rng = np.random.default_rng(seed)
    users, items, values, stamps = [], [], [], []
    item_cluster = np.arange(n_items) % clusters
    for user in range(n_users):
        cluster = user % clusters
        inside = np.flatnonzero(item_cluster == cluster)
        outside = np.flatnonzero(item_cluster != cluster)
        n_in = int(per_user * 0.9)
        chosen = list(rng.choice(inside, n_in, replace=False))
        chosen += list(rng.choice(outside, per_user - n_in, replace=False))
        for position, item in enumerate(chosen):
            users.append(f"u{user}")
            items.append(f"i{item}")
            values.append(5.0 if item_cluster[item] == cluster else 1.0)
            stamps.append(START_US + (user % 7) * DAY_US + position * DAY_US // 2)
    columns = {
        "user_id": users,
        "item_id": items,
        "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
    }
    if ratings:
        columns["rating"] = values
    return pa.table(columns)


def clustered_log(**options: object) -> InteractionLog:
    return from_table(clustered_table(**options))  # type: ignore[arg-type]


def cluster_of(identifier: str, clusters: int = 3) -> int:
    return int(identifier[1:]) % clusters
