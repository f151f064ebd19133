"""Interaction tables for the evaluation tests (imported, so hypothesis tests can use them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def interactions(
    rows: Sequence[tuple[str, str, int]], rating: Sequence[float] | None = None
) -> pa.Table:
    """A table from (user, item, minutes after T0) rows, with a row-number column."""
    columns: dict[str, pa.Array] = {
        "user_id": pa.array([r[0] for r in rows], pa.string()),
        "item_id": pa.array([r[1] for r in rows], pa.string()),
        "timestamp": pa.array(
            [T0 + timedelta(minutes=r[2]) for r in rows], pa.timestamp("us", tz="UTC")
        ),
        "row": pa.array(range(len(rows)), pa.int64()),
    }
    if rating is not None:
        columns["rating"] = pa.array(rating, pa.float64())
    return pa.table(columns)


def random_interactions(n_rows: int, n_users: int, n_items: int, seed: int) -> pa.Table:
    """Random interactions with many timestamp ties (minutes drawn from a small range)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_rows)
    items = rng.integers(0, n_items, n_rows)
    minutes = rng.integers(0, max(2, n_rows // 3), n_rows)
    micros = int(T0.timestamp() * 1_000_000) + minutes * 60_000_000
    return pa.table(
        {
            "user_id": pa.array([f"u{u}" for u in users], pa.string()),
            "item_id": pa.array([f"i{i}" for i in items], pa.string()),
            "timestamp": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "row": pa.array(np.arange(n_rows), pa.int64()),
        }
    )
