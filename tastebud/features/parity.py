"""Online/offline parity: sample entities, compare what serving reads with what the offline
store says was materialized, and report the diff rate (the plan's target: below 2%).

The comparison is against the newest offline value at or before the view's watermark, so
values computed after the last materialization do not count as drift. Floats compare with a
relative tolerance; lists element by element.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tastebud.features.materialize import select_views, watermark
from tastebud.features.store import FeatureStore
from tastebud.features.views import FeatureView, canonical
from tastebud.observability import metrics

PARITY_DIFFS = metrics.gauge(
    "feature",
    "parity_diff",
    "count",
    "Sampled entities whose online values differ from the offline store (last parity run).",
    labels=("view",),
)
PARITY_RATE = metrics.gauge(
    "feature",
    "parity_diff",
    "ratio",
    "Share of sampled entities whose online values differ (last parity run).",
    labels=("view",),
)
EXAMPLES = 5


def same(left: Any, right: Any, tolerance: float) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        if left is None or right is None:
            return left is right
        return math.isclose(float(left), float(right), rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            same(a, b, tolerance) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)


def check_view(
    features: FeatureStore, view: FeatureView, sample: int, tolerance: float, seed: int
) -> dict[str, Any]:
    mark = watermark(features, view)
    if mark is None:
        return {"sampled": 0, "diffs": 0, "diff_rate": None, "note": "never materialized"}
    now = datetime.now(UTC)
    since = now - timedelta(seconds=view.ttl_seconds)
    offline = features.offline.latest(
        view, start=since, end=mark + timedelta(microseconds=1)
    ).to_pylist()
    rows = random.Random(seed).sample(offline, min(sample, len(offline)))
    entries = features.online.read(view, [row["entity_id"] for row in rows], use_cache=False)
    diffs = 0
    examples: list[dict[str, Any]] = []
    for row, entry in zip(rows, entries, strict=True):
        expected = {spec.name: canonical(spec.dtype, row[spec.name]) for spec in view.features}
        got = None if entry is None else entry["v"]
        bad = (
            list(expected)
            if got is None
            else [n for n in expected if not same(expected[n], got.get(n), tolerance)]
        )
        if bad:
            diffs += 1
            if len(examples) < EXAMPLES:
                examples.append(
                    {"entity_id": row["entity_id"], "features": bad, "online": got is not None}
                )
    rate = diffs / len(rows) if rows else None
    PARITY_DIFFS.labels(view=view.name).set(diffs)
    if rate is not None:
        PARITY_RATE.labels(view=view.name).set(rate)
    return {
        "sampled": len(rows),
        "diffs": diffs,
        "diff_rate": rate,
        "watermark": mark.isoformat(),
        "examples": examples,
    }


def run_parity(
    features: FeatureStore,
    *,
    sample: int = 500,
    tolerance: float = 1e-6,
    views: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    per_view = {
        view.name: check_view(features, view, sample, tolerance, seed)
        for view in select_views(features, views)
    }
    sampled = sum(entry["sampled"] for entry in per_view.values())
    diffs = sum(entry["diffs"] for entry in per_view.values())
    return {
        "checked_at": datetime.now(UTC).isoformat(),
        "sampled": sampled,
        "diffs": diffs,
        "diff_rate": diffs / sampled if sampled else None,
        "target": 0.02,
        "views": per_view,
    }
