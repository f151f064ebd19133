"""The user model and the fast path's plumbing: the world rebuilt from truth.json is the one
generated, the vectorised hash is GrowthBook's, draws are deterministic, and behaviour
follows true utility and position."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.experiments.assignment import bucket_ranges, choose_variation, gb_hash
from tastebud.simulation.fast import (
    Design,
    FastSimulator,
    Ranker,
    ab,
    arm_truth,
    assign_many,
    hash_many,
    simulate_period,
)
from tastebud.simulation.users import Behaviour, UserModel, spec_from_truth


def test_truth_rebuilds_the_generated_world(tmp_path: Path):
    spec = WorldSpec(users=60, items=80, days=1, seed=5)
    generate_world(spec, tmp_path)
    model = UserModel.from_truth(tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert model.spec.world_id == truth["world_id"]
    for user in range(60):
        favorites = {f"creator-{c:04d}" for c in model.world.user_favorites[user]}
        assert sorted(favorites) == truth["users"]["favorite_creators"][model.user_id(user)]
    assert model.item_index(model.item_id(79)) == 79 and model.item_index("x1") is None
    truth["world_id"] = "syn5.000000"
    with pytest.raises(ValueError, match=r"not syn5\.000000"):
        spec_from_truth(truth)
    with pytest.raises(ValueError, match="not a synthetic world"):
        spec_from_truth({"spec": {"users": 1}})


def test_vectorised_hash_is_growthbooks(model: UserModel):
    ids = [f"sim{j:07d}" for j in range(500)] + ["", "a", "user-é", "9" * 40]
    assert hash_many("exp-1", ids).tolist() == [gb_hash("exp-1", unit) for unit in ids]
    weights = [0.2, 0.3, 0.5]
    ranges = bucket_ranges(weights, 1.0)
    expected = [choose_variation(gb_hash("k", unit) or 0.0, ranges) for unit in ids]
    assert assign_many("k", ids, weights).tolist() == expected


def test_utility_examination_and_reactions_follow_the_truth(model: UserModel):
    utility = model.all_utility()
    assert utility.shape == (1000, len(model.catalog)) and 0 < utility.min() < utility.max() < 1
    exam = model.examination(10)
    assert exam[0] == 1.0 and np.all(np.diff(exam) < 0)
    assert exam[9] == pytest.approx(10**-0.7)
    rng = np.random.default_rng(0)
    items = model.catalog[:1].repeat(20_000)
    low = model.react(rng, np.full(20_000, 0.1), items)
    high = model.react(rng, np.full(20_000, 0.9), items)
    assert high.seconds.mean() > 2 * low.seconds.mean()
    assert high.skipped.mean() < low.skipped.mean() and high.liked.mean() > low.liked.mean()
    assert high.bought.mean() > low.bought.mean()
    with pytest.raises(ValueError, match="click_slope"):
        Behaviour(click_base=0.5, click_slope=0.6)


def test_clicks_fall_with_position_and_rise_with_utility(model: UserModel):
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(200), 5)
    ranked = np.argsort(-model.all_utility()[users], axis=1)[:, :10]
    worst = np.argsort(model.all_utility()[users], axis=1)[:, :10]
    visits = np.full(len(users), 40)
    good = simulate_period(model, rng, users, ranked, visits)
    bad = simulate_period(model, rng, users, worst, visits)
    assert good["clicks"].sum() > 3 * bad["clicks"].sum()
    assert good["utility"].mean() > bad["utility"].mean()
    assert good["impressions"].sum() == 400 * len(users)


def test_experiments_are_deterministic_and_heavy_users_stay_heavy(model: UserModel):
    simulator = FastSimulator(model, ab(users=600))
    first, again = simulator.run(2, seed=7), simulator.run(2, seed=7)
    for a, b in zip(first, again, strict=True):
        assert a.exposed_users == b.exposed_users
        for name, sample in a.metrics.items():
            for variant, values in sample.variants.items():
                other = b.metrics[name].variants[variant]
                assert np.array_equal(values.numerator, other.numerator)
                assert np.array_equal(values.pre_numerator, other.pre_numerator)
    assert first[0].exposed_users != first[1].exposed_users  # another key, another split
    control = first[0].metrics["plays_per_user"].variants["control"]
    assert np.corrcoef(control.numerator, control.pre_numerator)[0, 1] > 0.6
    assert control.first_day.min() == 0 and control.first_day.max() < 7
    with pytest.raises(ValueError, match="distinct names"):
        Design(arms=ab().arms[:1] * 2)
    with pytest.raises(ValueError, match="sum to 1"):
        Design(arms=(ab().arms[0], ab().arms[0].__class__("b", 0.2)))


def test_arm_truth_orders_rankers(model: UserModel):
    design = ab(Ranker(popularity=0.5), users=100)
    truth = arm_truth(model, design)
    assert truth["control"].utility > truth["treatment"].utility
    assert truth["control"].click_through > truth["treatment"].click_through > 0
