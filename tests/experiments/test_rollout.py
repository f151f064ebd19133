"""Canary rollouts on real stores (embedded database, local artifacts, real models): a happy
rollout steps on a passed ``now`` and promotes; a broken candidate is rolled back on its
first step and only that step's users ever got it; a version that does not load moves no
traffic; pause and abort are audited. Traffic is served through the real assignment book
into the real exposure log (2,000 users a round), ranked by the registered models."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from interaction_data import clustered_table

from tastebud.config import Settings, load_settings
from tastebud.data.interactions import from_table
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.experiments import rollout
from tastebud.experiments.assignment import ExperimentBook, gb_hash
from tastebud.experiments.errors import ExperimentConflict, InvalidDefinition
from tastebud.experiments.exposure import Exposure
from tastebud.experiments.exposure_log import ExposureLog
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.experiments.store import ExperimentStore
from tastebud.jobs.definitions.rollout import advance
from tastebud.models import ALSRecommender, Recommender
from tastebud.ranking.lifecycle import ModelLifecycle
from tastebud.registry import ModelRegistry, open_registry
from tastebud.stores import Stores, open_stores

USERS = [f"u{n}" for n in range(2_000)]
CATALOG = {f"i{n}" for n in range(60)}
EVERY = timedelta(hours=1)


@dataclass
class World:
    settings: Settings
    stores: Stores
    registry: ModelRegistry
    store: ExperimentStore
    log: ExposureLog
    production: str
    models: dict[str, Recommender]
    alerts: list[dict[str, Any]]

    def register(self, model: Recommender) -> str:
        with tempfile.TemporaryDirectory() as scratch:
            folder = model.save(Path(scratch) / "model")
            manifest = {"model": model.name, "user_count": 120, "item_count": 60}
            version = self.registry.register(folder, manifest).model_version
        self.models[version] = model
        return version

    def validate(self, version: str) -> object:
        return ModelLifecycle(self.settings, self.stores, registry=self.registry).load_model(
            version
        )

    def start(self, version: str, now: datetime, steps: str = "1,5,25,50,100") -> None:
        plan = rollout.Plan(version, rollout.parse_steps(steps), EVERY, min_users=10)
        rollout.start(
            self.store,
            self.registry,
            plan,
            settings=self.settings,
            validate=self.validate,
            actor="alice",
            now=now,
        )

    def serve(self, at: datetime) -> None:
        """One round: every user gets a list from the model their assignment names."""
        book = ExperimentBook([s.experiment for s in self.store.list()], self.settings.ranking)
        production = self.registry.aliases()["production"]
        chosen = {user: book.assign(user, now=at.timestamp()) for user in USERS}
        by_version: dict[str, list[str]] = {}
        for user, assignment in chosen.items():
            version = assignment.model if assignment and assignment.model else production
            by_version.setdefault(version, []).append(user)
        rng = np.random.default_rng(int(at.timestamp()))
        for version, users in by_version.items():
            ids, _ = self.models[version].recommend(users, k=10)
            for user, row in zip(users, ids, strict=True):
                assignment = chosen[user]
                self.log.append(
                    Exposure(
                        list_id=uuid.uuid4().hex,
                        served_at=at,
                        experiment=assignment.experiment if assignment else None,
                        variant=assignment.variant if assignment else None,
                        user_id=user,
                        session_id=None,
                        items=tuple(item for item in row if item in CATALOG),
                        model_version=version,
                        latency_ms=float(rng.gamma(9.0, 1.0)),
                    )
                )
        self.log.flush()

    def tick(self, now: datetime) -> list[dict[str, Any]]:
        return advance(self.settings, self.stores, now, alert=self.alerts.append)


def fitted(seed: int, broken: bool = False) -> Recommender:
    table = clustered_table(seed=seed)
    if broken:  # trained on another catalog's ids: nothing it ranks can be served
        table = table.set_column(
            1, "item_id", pc.binary_join_element_wise("x", table["item_id"], "")
        )
    matrix = build_matrix(from_table(table), MatrixOptions())
    return ALSRecommender(factors=8, iterations=5, use_gpu=False, random_state=seed).fit(matrix)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = load_settings(home=tmp_path, online_url="memory://")
    stores = open_stores(settings)
    registry = open_registry(settings, stores.artifacts)
    store = ExperimentStore(stores.database.sql_backend("experiments"))
    log = open_exposure_log(settings, stores.database)
    built = World(settings, stores, registry, store, log, "", {}, [])
    built.production = built.register(fitted(0))
    registry.promote(built.production, "production")
    yield built
    log.close()
    store.close()
    stores.close()


def candidate_users(world: World, version: str) -> set[str]:
    table = world.log.scan(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    chosen = table.filter(pc.equal(table["model_version"], pa.scalar(version)))
    return set(chosen["user_id"].to_pylist())


def test_a_healthy_rollout_steps_on_time_and_promotes(world: World) -> None:
    version = world.register(fitted(1))
    start = datetime.now(UTC)
    world.start(version, start)
    key = rollout.PREFIX + version
    assert world.registry.aliases()["canary"] == version
    shares = []
    for hour in range(1, 6):
        world.serve(start + EVERY * hour - timedelta(minutes=30))
        early = world.tick(start + EVERY * hour - timedelta(minutes=20))
        assert early[0]["action"] in ("hold", "promoted")  # the step's hour has not passed
        if early[0]["action"] == "promoted":
            break
        done = world.tick(start + EVERY * hour)
        shares.append(done[0]["share_percent"])
        if done[0]["action"] == "promoted":
            break
    assert shares == [5.0, 25.0, 50.0, 50.0]
    assert world.registry.aliases()["production"] == version
    assert "canary" not in world.registry.aliases()
    assert world.store.require(key).experiment.status == "stopped"
    assert [e.action for e in world.store.audit(key)] == [
        "create",
        "start",
        "traffic",
        "traffic",
        "traffic",
        "stop",
    ]
    assert world.alerts == []
    # Users in the candidate at 5% were still in it at 50%: the ranges only grew.
    assert len(candidate_users(world, version)) < 0.5 * len(USERS) + 3 * np.sqrt(len(USERS))


def test_a_broken_candidate_is_rolled_back_at_its_first_step(world: World) -> None:
    version = world.register(fitted(2, broken=True))
    start = datetime.now(UTC)
    world.start(version, start)
    key = rollout.PREFIX + version
    world.serve(start + timedelta(minutes=10))
    done = world.tick(start + timedelta(minutes=15))
    assert done[0]["action"] == "rolled_back"
    assert "empty_lists" in done[0]["reason"]
    assert world.store.require(key).experiment.status == "stopped"
    assert world.registry.aliases().get("production") == world.production
    history = world.registry.alias_state("canary").history
    assert history[-1].action == "retire" and "empty_lists" in history[-1].reason
    assert [alert["alert"] for alert in world.alerts] == ["rollout_rolled_back"]
    # Later traffic all goes to production; the candidate reached only the first 1%.
    world.serve(start + timedelta(minutes=30))
    served = candidate_users(world, version)
    widest = rollout.Plan(version).widest
    assert served and all(
        1 - widest <= (gb_hash(key, user) or -1) < 1 - widest + 0.01 for user in served
    )
    assert len(served) <= 0.01 * len(USERS) + 3 * np.sqrt(0.01 * len(USERS))
    assert world.tick(start + timedelta(hours=2)) == []  # nothing running any more


def test_a_version_that_does_not_load_moves_no_traffic(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "garbage"
    folder.mkdir()
    (folder / "model.npz").write_bytes(b"not a model")
    manifest = {"model": "als", "user_count": 120, "item_count": 60}
    version = world.registry.register(folder, manifest).model_version
    with pytest.raises(InvalidDefinition) as refused:
        world.start(version, datetime.now(UTC))
    assert refused.value.field == "version"
    assert "fails validation on load" in str(refused.value)
    assert world.store.list() == []
    assert "canary" not in world.registry.aliases()


def test_bad_steps_and_durations_name_their_field() -> None:
    for text in ("1,5,50", "5,1,100", "0,100", "a,b", "100"):
        with pytest.raises(InvalidDefinition) as refused:
            rollout.parse_steps(text)
        assert refused.value.field == "steps"
    with pytest.raises(InvalidDefinition) as refused:
        rollout.parse_duration("soon")
    assert refused.value.field == "step_every"
    assert rollout.parse_duration("30m") == timedelta(minutes=30)


def test_pause_resume_and_abort_are_audited(world: World) -> None:
    version = world.register(fitted(3))
    start = datetime.now(UTC)
    world.start(version, start)
    key = rollout.PREFIX + version
    paused = rollout.pause(world.store, key, "bob", "checking a dashboard")
    assert paused.describe()["status"] == "paused"
    assert world.tick(start + EVERY * 2) == []  # a paused rollout does not step
    with pytest.raises(ExperimentConflict):
        world.start(world.register(fitted(4)), start)  # one rollout at a time
    rollout.resume(world.store, key, "bob", "dashboard fine")
    ended = rollout.abort(world.store, world.registry, key, "carol", "wrong version")
    assert ended.outcome == "aborted" and ended.reason == "wrong version"
    audit = world.store.audit(key)
    assert [(e.action, e.actor) for e in audit[2:]] == [
        ("pause", "bob"),
        ("resume", "bob"),
        ("stop", "carol"),
    ]
    assert world.registry.alias_state("canary").history[-1].action == "retire"
    assert world.registry.aliases()["production"] == world.production
    with pytest.raises(ExperimentConflict):
        rollout.abort(world.store, world.registry, key, "carol", "again")


def test_set_traffic_only_rises_keeps_users_and_is_audited(
    open_store: Callable[[], ExperimentStore],
) -> None:
    store = open_store()  # embedded SQLite and a real PostgreSQL (conftest)
    plan = rollout.Plan("20261122T013000Z-3f9a1c")
    store.put(rollout.build_experiment(plan, "alice"), "alice")
    store.set_status(plan.key, "running", "alice")
    users = [f"u{n}" for n in range(5_000)]

    def candidates() -> set[str]:
        book = ExperimentBook([store.require(plan.key).experiment], load_settings().ranking)
        chosen = {user: book.assign(user) for user in users}
        return {user for user, got in chosen.items() if got and got.variant == "candidate"}

    before = candidates()
    store.set_traffic(plan.key, plan.traffic(2), "bob", "step 3")
    after = candidates()
    assert before < after  # everyone stays; only newcomers enter
    assert 0.2 * len(users) < len(after) < 0.3 * len(users)
    with pytest.raises(ExperimentConflict):
        store.set_traffic(plan.key, plan.traffic(1), "bob", "back down")
    with pytest.raises(InvalidDefinition):
        store.set_traffic(plan.key, 1.5, "bob", "too much")
    entry = store.audit(plan.key)[-1]
    assert (entry.action, entry.actor, entry.note) == ("traffic", "bob", "step 3")
    assert entry.before and entry.after and entry.after["traffic"] > entry.before["traffic"]
    store.set_status(plan.key, "stopped", "bob")
    with pytest.raises(ExperimentConflict):
        store.set_traffic(plan.key, 1.0, "bob", "after the end")
