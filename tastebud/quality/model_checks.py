"""The checks against the production model, each from the scan's aggregates and the model's
reference (its training snapshot, ``reference``) to a ``CheckResult``: drift, cold start and
staleness (docs/quality.md). The checks of the data alone are in ``checks``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tastebud.quality import stats
from tastebud.quality.checks import Inputs, failed_to_run, judged
from tastebud.quality.reference import Reference
from tastebud.quality.results import CheckResult
from tastebud.quality.scan import HOUR_US, Scan

if TYPE_CHECKING:
    import pyarrow as pa

    from tastebud.registry import ModelVersion


def _counts(table: pa.Table, key: str, column: str) -> dict[str, int]:
    data = table.to_pydict()
    return {k: v for k, v in zip(data[key], data[column], strict=True) if v}


def _aligned(reference: dict[str, int], current: dict[str, int], keys: Iterable[str]) -> tuple:
    ordered = list(keys)
    return [reference.get(k, 0) for k in ordered], [current.get(k, 0) for k in ordered]


def check_drift(inputs: Inputs, reference: Reference) -> CheckResult:
    """PSI and a test of significance per distribution, against the training snapshot."""
    scan, base = inputs.scan, reference.scan
    details: dict[str, Any] = {"reference": _describe(reference)}
    if not scan.users.num_rows:
        return failed_to_run(inputs, "drift", "no events in the window")
    type_now = _type_counts(scan, window=True)
    type_then = _type_counts(base, window=True)
    then, now = _aligned(type_then, type_now, sorted(set(type_then) | set(type_now)))
    metrics: dict[str, float | None] = {"drift.event_type.psi": round(stats.psi(then, now), 5)}
    details["event_type"] = {"chi_square_p": stats.chi_square_p(then, now)}

    items_then = _counts(base.items, "item_id", "window_n")
    items_now = _counts(scan.items, "item_id", "window_n")
    top = sorted(items_then, key=items_then.__getitem__, reverse=True)
    top = top[: inputs.settings.drift_top_items]
    then, now = _aligned(items_then, items_now, top)
    then.append(sum(items_then.values()) - sum(then))
    now.append(sum(items_now.values()) - sum(now))
    metrics["drift.item_popularity.psi"] = round(stats.psi(then, now), 5)
    details["item_popularity"] = {"chi_square_p": stats.chi_square_p(then, now), "bins": len(then)}

    activity_then = base.users.column("n").to_numpy()
    activity_now = scan.users.column("n").to_numpy()
    metrics["drift.user_activity.psi"] = round(
        stats.psi(stats.activity_bins(activity_then), stats.activity_bins(activity_now)), 5
    )
    details["user_activity"] = {"ks_p": stats.ks_p(activity_then, activity_now)}
    name = max(metrics, key=lambda key: metrics[key] or 0.0)
    message = f"largest shift {name} = {metrics[name]} against {reference.version}'s training data"
    return judged(inputs, "drift", metrics, message, **details)


def _type_counts(scan: Scan, *, window: bool) -> dict[str, int]:
    hour = scan.bounds.window // HOUR_US
    counts: dict[str, int] = {}
    for row in scan.groups.to_pylist():
        if (row["hour"] >= hour) == window and row["hour"] * HOUR_US >= scan.bounds.first:
            counts[row["event_type"]] = counts.get(row["event_type"], 0) + row["n"]
    return counts


def _describe(reference: Reference) -> dict[str, Any]:
    return {
        "version": reference.version,
        "start": reference.start.isoformat(),
        "end": reference.end.isoformat(),
        "events": reference.scan.rows,
    }


def check_cold_start(inputs: Inputs, reference: Reference) -> CheckResult:
    """Shares of the window's events by users and on items the production model does not
    know (requests are not logged in the store: see docs/quality.md)."""
    import pyarrow.compute as pc  # lazy: pyarrow waits for a run (quality history)

    scan = inputs.scan
    if not scan.users.num_rows:
        return failed_to_run(inputs, "cold_start", "no events in the window")
    metrics: dict[str, float | None] = {}
    for name, table, key, column, known in (
        ("user", scan.users, "user_id", "n", reference.users),
        ("item", scan.items, "item_id", "window_n", reference.items),
    ):
        counts = table.column(column)
        unknown = pc.invert(pc.is_in(table.column(key), value_set=known))
        total = pc.sum(counts).as_py() or 0
        missing = pc.sum(pc.filter(counts, unknown)).as_py() or 0
        metrics[f"cold_start.{name}_share"] = round(missing / total, 6) if total else math.nan
    message = (
        f"{metrics['cold_start.user_share']:.1%} of events by users and "
        f"{metrics['cold_start.item_share']:.1%} on items {reference.version} does not know"
    )
    return judged(inputs, "cold_start", metrics, message, reference=_describe(reference))


def check_staleness(inputs: Inputs, manifest: ModelVersion) -> CheckResult:
    """The production model's age against the end of its training data: how much newer
    behaviour it has not seen. Not critical by default (retraining is the remedy)."""
    version = manifest.model_version
    if manifest.time_range is None or manifest.time_range.end is None:
        return failed_to_run(inputs, "staleness", f"{version} records no training time range")
    end = manifest.time_range.end
    hours = max(0.0, (inputs.as_of - end).total_seconds() / 3600)
    message = f"{version} was trained on data up to {end.isoformat()}, {hours:.1f} hours ago"
    return judged(
        inputs,
        "staleness",
        {"model.staleness_hours": round(hours, 2)},
        message,
        version=version,
        data_end=end.isoformat(),
        registered_at=manifest.registered_at.isoformat(),
    )
