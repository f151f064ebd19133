"""Each retraining trigger fires on the problem it is for, and only its own: new events,
items the model does not know, a different population served (score drift), and data
drift reported by the data-quality checks."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tastebud.monitoring.runner import open_results, run_monitor
from tastebud.quality.runner import open_results as open_quality
from tastebud.quality.runner import run_checks

from .conftest import CHECKED

OFF = dict.fromkeys(
    ("ndcg_drop", "score_psi", "data_psi", "new_events", "new_items", "max_age_hours")
)


def only(**rules: float) -> dict[str, object]:
    return {"triggers": {**OFF, **rules}}


def fired(report) -> list[str]:
    return [str(check.trigger) for check in report.firing]


def new_items(events: pa.Table) -> pa.Table:
    """A quarter of the events after the shift are on 8 items the model never saw."""
    items = events.column("item_id")
    index = pa.array(range(len(events)))
    moved = pc.less(pc.bit_wise_and(index, 7), 2)  # 2 of every 8 events
    renamed = pc.binary_join_element_wise(
        "new-", pc.cast(pc.bit_wise_and(index, 31), pa.string()), ""
    )
    return events.set_column(
        events.schema.get_field_index("item_id"), "item_id", pc.if_else(moved, renamed, items)
    )


def heavy_users_only(events: pa.Table) -> pa.Table:
    """After the shift only the 5% most active users: another population is served."""
    counts = events.group_by("user_id").aggregate([("user_id", "count")])
    cut = sorted(counts.column("user_id_count").to_pylist())[int(0.95 * len(counts))]
    heavy = counts.filter(pc.greater_equal(counts.column("user_id_count"), cut))
    return events.filter(pc.is_in(events.column("user_id"), value_set=heavy.column("user_id")))


def test_new_events_fire_their_trigger_only(build) -> None:
    stores, settings = build("a", **only(new_events=1_000, new_items=5))
    report = run_monitor(stores, settings, as_of=CHECKED)
    assert fired(report) == ["new_events"]
    events = next(c for c in report.checks if c.check == "new_data").metrics
    # world A's own items the model never saw before the shift: a few, under the threshold
    assert events["new_data.events"] > 1_000 and events["new_data.items"] < 5


def test_unknown_items_fire_new_items(build) -> None:
    stores, settings = build("a", seed=new_items, **only(new_items=5))
    report = run_monitor(stores, settings, as_of=CHECKED)
    assert fired(report) == ["new_items"]
    check = next(c for c in report.checks if c.check == "new_data")
    assert check.metrics["new_data.items"] >= 8  # new-0, new-1, new-8, ... new-25


def test_another_population_fires_score_drift(build) -> None:
    stores, settings = build("a", seed=heavy_users_only, **only(score_psi=0.25))
    report = run_monitor(stores, settings, as_of=CHECKED)
    scores = next(c for c in report.checks if c.check == "scores")
    assert fired(report) == ["score_psi"], scores.message
    clean, clean_settings = build("a", **only(score_psi=0.25))
    assert fired(run_monitor(clean, clean_settings, as_of=CHECKED)) == []


def test_data_drift_comes_from_the_quality_checks(build) -> None:
    stores, settings = build("b", **only(data_psi=0.25))
    with open_results(stores) as results:
        before = run_monitor(stores, settings, as_of=CHECKED, results=results)
        assert {c.check: c.status for c in before.checks}["data_drift"] == "error"
        with open_quality(stores) as quality:
            run_checks(stores, settings, as_of=CHECKED, results=quality)
        after = run_monitor(stores, settings, as_of=CHECKED, results=results)
    drift = next(c for c in after.checks if c.check == "data_drift")
    assert fired(after) == ["data_psi"], drift.message
    assert drift.metrics["data_drift.psi"] > 0.25
