"""A canary rollout over the real app (``api.experiment_lab``): the candidate is served, by
the serving path's own variant models, to its first step's users only; when its users stop
clicking (a model whose lists nobody wants) the ``rollout`` job rolls it back, and from the
next poll on nobody is served it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from api.experiment_lab import Lab

from experiments.test_rollout import fitted
from tastebud.experiments import rollout
from tastebud.experiments.assignment import gb_hash
from tastebud.experiments.store import ExperimentStore
from tastebud.jobs.definitions.rollout import advance
from tastebud.ranking.lifecycle import ModelLifecycle

USERS = [f"u{n}" for n in range(400)]
FIRST = 10.0  # percent: enough users at the first step to judge in a bounded test


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    made = Lab(tmp_path)
    yield made
    made.close()


def test_a_rollout_through_the_app_is_rolled_back_on_its_users_clicks(lab: Lab) -> None:
    world = lab.world
    with tempfile.TemporaryDirectory() as scratch:
        folder = fitted(2, broken=True).save(Path(scratch) / "model")
        manifest = {"model": "als", "user_count": 120, "item_count": 60}
        version = world.registry.register(folder, manifest).model_version
    store = ExperimentStore(world.stores.database.sql_backend("experiments"))
    try:
        plan = rollout.Plan(version, (FIRST, 50.0, 100.0), timedelta(hours=1), min_users=20)
        validate = ModelLifecycle(world.settings, world.stores, registry=world.registry)
        rollout.start(
            store,
            world.registry,
            plan,
            settings=world.settings,
            validate=validate.load_model,
            actor="alice",
            now=datetime.now(UTC),
        )
        low = 1 - plan.widest
        probe = next(
            f"probe{n}"
            for n in range(1_000)
            if low <= (gb_hash(plan.key, f"probe{n}") or -1.0) < low + FIRST / 100
        )
        lab.wait(lambda: lab.serve(probe)["model_version"] == version)
        rng = np.random.default_rng(0)
        for user in USERS:
            body = lab.serve(user)
            if body["model_version"] != version and rng.random() < 0.9:
                lab.click(body, positions=3)  # production's lists get clicks; the candidate's none
        lab.exposures()  # flushed, as the exposure log's timer would before a scheduled run
        alerts: list[dict[str, object]] = []
        done = advance(world.settings, world.stores, datetime.now(UTC), alert=alerts.append)
        assert [row["action"] for row in done] == ["rolled_back"], done
        assert "click_through" in str(done[0]["reason"])
        assert alerts and alerts[0]["model_version"] == version
        lab.wait(lambda: lab.serve(probe)["model_version"] != version)
        after = [lab.serve(user)["model_version"] for user in USERS[:50]]
        assert version not in after
    finally:
        store.close()
    exposures = lab.exposures()
    served = {row["user_id"] for row in exposures if row["model_version"] == version} - {probe}
    widest = plan.widest
    assert served and all(
        1 - widest <= (gb_hash(plan.key, user) or -1) < 1 - widest + FIRST / 100 for user in served
    )
    assert len(served) <= FIRST / 100 * len(USERS) + 3 * np.sqrt(FIRST / 100 * len(USERS))
