"""The experiment store's contract, run against every backend (embedded SQLite, PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from experiments.factories import experiment
from tastebud.experiments.definition import Namespace
from tastebud.experiments.errors import ExperimentConflict, ExperimentNotFound, InvalidDefinition
from tastebud.experiments.store import ExperimentStore


def test_put_creates_a_draft_and_get_reads_it_back(store: ExperimentStore) -> None:
    assert store.get("blend") is None and store.marker() == 0 and store.list() == []
    stored = store.put(experiment(), actor="ana", note="first draft")
    assert stored.status == "draft" and stored.version == 1
    again = store.get("blend")
    assert again is not None
    assert again.experiment == stored.experiment
    assert again.experiment.variants[1].ranking == {"mmr": {"diversity": 0.5}}
    assert again.created_at == again.updated_at and again.created_at.tzinfo is not None
    assert [item.key for item in store.list()] == ["blend"]
    assert store.list(status="running") == []
    entry = store.audit("blend")[0]
    assert (entry.actor, entry.action, entry.note, entry.before) == (
        "ana",
        "create",
        "first draft",
        None,
    )
    assert entry.after is not None and entry.after["key"] == "blend"


def test_a_draft_is_replaced_and_the_change_audited(store: ExperimentStore) -> None:
    store.put(experiment(), actor="ana")
    changed = experiment(traffic=0.5, description="half the users")
    stored = store.put(changed, actor="bo", note="less traffic")
    assert stored.experiment.traffic == 0.5 and stored.version == 2
    assert store.put(changed, actor="bo").version == 2  # the same definition: no change
    update = store.audit("blend")[-1]
    assert (update.actor, update.action, update.note) == ("bo", "update", "less traffic")
    assert update.changed == ["description", "traffic"]
    assert len(store.audit("blend")) == 2


def test_the_marker_moves_on_every_change_of_any_experiment(store: ExperimentStore) -> None:
    markers = [store.marker()]
    store.put(experiment("a"), actor="ana")
    markers.append(store.marker())
    store.put(experiment("b"), actor="ana")
    markers.append(store.marker())
    store.set_status("a", "running", actor="ana")
    markers.append(store.marker())
    store.pause_variant("a", "diverse", "skip rate up 12%", actor="guardrails")
    markers.append(store.marker())
    assert markers == sorted(set(markers)) and len(markers) == 5


def test_status_moves_along_the_transitions(store: ExperimentStore) -> None:
    store.put(experiment(), actor="ana")
    running = store.set_status("blend", "running", actor="ana", note="go")
    assert running.status == "running" and running.experiment.start is not None
    assert store.set_status("blend", "paused", actor="ana").status == "paused"
    with pytest.raises(ExperimentConflict, match="paused: it can go to running, stopped"):
        store.set_status("blend", "paused", actor="ana")
    stopped = store.set_status("blend", "stopped", actor="ana")
    assert stopped.status == "stopped" and stopped.experiment.end is not None
    with pytest.raises(ExperimentConflict, match="stopped experiment cannot run again"):
        store.set_status("blend", "running", actor="ana")
    with pytest.raises(ExperimentConflict, match="stopped and changes no more"):
        store.put(experiment(description="again"), actor="ana")
    actions = [entry.action for entry in store.audit("blend")]
    assert actions == ["create", "start", "pause", "stop"]
    with pytest.raises(ExperimentNotFound):
        store.set_status("nope", "running", actor="ana")


def test_a_running_experiment_keeps_its_assignment(store: ExperimentStore) -> None:
    store.put(experiment(), actor="ana")
    store.set_status("blend", "running", actor="ana")
    reweighted = experiment(
        variants=[{"name": "control", "weight": 0.7}, {"name": "diverse", "weight": 0.3}]
    )
    with pytest.raises(ExperimentConflict, match="its variants decide who sees what"):
        store.put(reweighted, actor="ana")
    with pytest.raises(ExperimentConflict, match="traffic"):
        store.put(experiment(traffic=0.2), actor="ana")
    with pytest.raises(ExperimentConflict, match="change its status with start"):
        store.put(experiment(status="stopped"), actor="ana")
    reworded = store.put(experiment(description="reworded", goals=["conversion"]), actor="ana")
    assert reworded.status == "running" and reworded.experiment.goals == ["conversion"]
    stored = store.get("blend")
    assert stored is not None and stored.experiment.variants[0].weight == 0.5


def test_a_paused_variant_resumes_only_with_a_review(store: ExperimentStore) -> None:
    store.put(experiment(), actor="ana")
    with pytest.raises(ExperimentConflict, match="draft, not running"):
        store.pause_variant("blend", "diverse", "why", actor="ana")
    store.set_status("blend", "running", actor="ana")
    with pytest.raises(ExperimentConflict, match="control"):
        store.pause_variant("blend", "control", "why", actor="ana")
    with pytest.raises(ExperimentNotFound, match="no variant 'ghost'"):
        store.pause_variant("blend", "ghost", "why", actor="ana")
    paused = store.pause_variant("blend", "diverse", "skip_rate +14%", actor="guardrails")
    assert paused.experiment.paused_variants == {"diverse": "skip_rate +14%"}
    with pytest.raises(InvalidDefinition, match="reviewed_by"):
        store.resume("blend", reviewed_by=" ", note="fine", variant="diverse")
    with pytest.raises(InvalidDefinition, match="note"):
        store.resume("blend", reviewed_by="cy", note="", variant="diverse")
    with pytest.raises(ExperimentConflict, match="'control' of 'blend' is not paused"):
        store.resume("blend", reviewed_by="cy", note="ok", variant="control")
    resumed = store.resume("blend", reviewed_by="cy", note="a logging bug", variant="diverse")
    assert resumed.experiment.paused_variants == {} and resumed.status == "running"
    with pytest.raises(ExperimentConflict, match="nothing to resume"):
        store.resume("blend", reviewed_by="cy", note="again")
    last = store.audit("blend")[-1]
    assert (last.actor, last.action, last.note) == ("cy", "resume_variant:diverse", "a logging bug")
    assert last.changed == ["paused_variants"]
    pause = store.audit("blend")[-2]
    assert (pause.actor, pause.action, pause.note) == (
        "guardrails",
        "pause_variant:diverse",
        "skip_rate +14%",
    )


def test_resuming_a_paused_experiment_brings_back_every_variant(store: ExperimentStore) -> None:
    store.put(experiment(), actor="ana")
    store.set_status("blend", "running", actor="ana")
    store.pause_variant("blend", "diverse", "breach", actor="guardrails")
    store.set_status("blend", "paused", actor="ana")
    resumed = store.resume("blend", reviewed_by="cy", note="checked both")
    assert resumed.status == "running" and resumed.experiment.paused_variants == {}
    assert store.audit("blend")[-1].action == "resume"


def test_namespace_ranges_never_overlap_among_live_experiments(store: ExperimentStore) -> None:
    store.put(experiment("a", namespace={"name": "home", "start": 0, "end": 0.5}), actor="ana")
    store.put(experiment("b", namespace={"name": "home", "start": 0.5, "end": 1}), actor="ana")
    store.put(experiment("c", namespace={"name": "search", "start": 0, "end": 1}), actor="ana")
    overlapping = experiment("d", namespace={"name": "home", "start": 0.4, "end": 0.6})
    with pytest.raises(InvalidDefinition) as refused:
        store.put(overlapping, actor="ana")
    assert refused.value.field == "namespace" and "'a'" in str(refused.value)
    assert store.get("d") is None and [e.key for e in store.list()] == ["a", "b", "c"]
    # A stopped experiment gives its range back.
    store.set_status("a", "stopped", actor="ana")
    assert (
        store.put(
            overlapping.model_copy(
                update={"namespace": Namespace(name="home", start=0.1, end=0.5)}
            ),
            actor="ana",
        ).key
        == "d"
    )


def test_another_store_on_the_same_database_sees_every_change(open_store) -> None:  # type: ignore[no-untyped-def]
    first, second = open_store(), open_store()
    first.put(experiment(), actor="ana")
    first.set_status("blend", "running", actor="ana")
    seen = second.get("blend")
    assert seen is not None and seen.status == "running"
    assert second.marker() == first.marker() == 2


def test_concurrent_writers_get_distinct_versions(open_store) -> None:  # type: ignore[no-untyped-def]
    """Two writers on their own connections: every change its own version, so a poller
    that saw version N never misses a later change (the marker only grows)."""
    stores = [open_store(), open_store()]

    def write(index: int) -> list[int]:
        return [
            stores[index].put(experiment(f"w{index}-{n}"), actor="ana").version for n in range(15)
        ]

    with ThreadPoolExecutor(2) as pool:
        versions = [v for batch in pool.map(write, [0, 1]) for v in batch]
    assert sorted(versions) == list(range(1, 31))
    assert stores[0].marker() == 30
