"""The statistics (``experiments.stats``) on experiments drawn by the fast path: A/A false
positives at alpha, power at the sample size the power calculation gives, CUPED's variance
reduction, SRM on a seeded traffic bug, and a worse ranker found worse by the amount the
truth says. Each test draws its experiments once (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.experiments import stats
from tastebud.experiments.samples import ExperimentData
from tastebud.simulation.fast import FastSimulator, Ranker, ab, arm_truth
from tastebud.simulation.users import UserModel

ALPHA = 0.05


def _comparisons(data: list[ExperimentData], metric: str, *, cuped: bool) -> list:
    out = []
    for experiment in data:
        sample = experiment.metrics[metric]
        control, treatment = sample.variants["control"], sample.variants["treatment"]
        out.append(stats.compare(sample.spec, control, treatment, alpha=ALPHA, cuped=cuped))
    return out


@pytest.fixture(scope="module")
def aa(model: UserModel) -> list[ExperimentData]:
    """300 A/A experiments of 1,000 units (about 480 exposed per arm), 7 days each."""
    return FastSimulator(model, ab(users=1000, candidates=30)).run(300, seed=0)


@pytest.mark.parametrize(
    ("metric", "cuped"),
    [
        ("click_through", False),  # the ratio metric (delta method)
        ("click_through", True),
        ("plays_per_user", False),  # a mean metric
        ("plays_per_user", True),
        ("play_time", True),
        ("conversion", False),  # a proportion
    ],
)
def test_aa_false_positive_rate_is_alpha(aa: list[ExperimentData], metric: str, cuped: bool):
    p = np.array([c.p_value for c in _comparisons(aa, metric, cuped=cuped)])
    rate = float(np.mean(p < ALPHA))
    assert 0.02 <= rate <= 0.08, (metric, cuped, rate)
    # p-values of a true null are uniform: no pile-up at either end.
    assert 0.35 <= float(np.mean(p < 0.5)) <= 0.65


def test_aa_has_no_sample_ratio_mismatch(aa: list[ExperimentData]):
    flagged = [stats.srm(list(d.exposed_users.values()), d.weights).flagged for d in aa]
    assert sum(flagged) <= 3  # at p < 0.001, about 0.3 of 300 by chance


def test_cuped_reduces_variance_where_the_pre_period_predicts(aa: list[ExperimentData]):
    """Heavy users stay heavy: plays and play time before predict them during (the
    correlation is about 0.83), so CUPED removes about 1 - (1 - 0.83²) ≈ 69% of the variance."""
    for metric in ("plays_per_user", "play_time"):
        reductions = [c.variance_reduction for c in _comparisons(aa[:50], metric, cuped=True)]
        assert min(reductions) >= 0.3, metric
        assert float(np.median(reductions)) >= 0.5, metric


def test_seeded_effect_is_found_at_the_powered_sample_size(model: UserModel):
    """A 10% lift in click probability lifts plays per user by exactly 10% (nothing is
    capped). A pilot's control gives the baseline mean and sd; ``sample_size`` gives users
    per variant for that effect at alpha 0.05 and power 0.8; 120 experiments of that size
    find it (p < alpha, the right sign) in at least 80% of them.

    The analysis is the experiment's own, CUPED on; without CUPED the detection rate is
    the nominal 80% give or take its binomial noise (about ±3.7 points at 120)."""
    effect = 0.10
    pilot = FastSimulator(model, ab(users=4000, candidates=30)).run(1, seed=99)[0]
    control = pilot.metrics["plays_per_user"].variants["control"]
    n = stats.sample_size(
        float(control.numerator.mean()), float(control.numerator.std(ddof=1)), effect
    )
    exposed = sum(pilot.exposed_users.values()) / 4000
    design = ab(lift=1 + effect, users=int(np.ceil(2 * n / exposed)), candidates=30)
    data = FastSimulator(model, design).run(120, seed=1)
    sizes = [d.metrics["plays_per_user"].variants["control"].users for d in data]
    assert abs(np.mean(sizes) - n) / n < 0.05  # the experiments are the powered size
    found = {}
    for cuped in (True, False):
        comparisons = _comparisons(data, "plays_per_user", cuped=cuped)
        found[cuped] = np.mean([c.significant and c.absolute.estimate > 0 for c in comparisons])
        lifts = [c.relative.estimate for c in comparisons]
        assert abs(np.mean(lifts) - effect) < 0.02  # unbiased for the seeded lift
    print(f"powered n={n} per variant; detected {found}")
    assert found[True] >= 0.8, found
    assert found[False] >= 0.8 - 2 * np.sqrt(0.8 * 0.2 / 120), found


def test_seeded_traffic_bug_is_caught_by_srm(model: UserModel):
    """Treatment loses 20% of its users' exposures: the sample-ratio test flags it."""
    data = FastSimulator(model, ab(drop=0.2, users=4000, candidates=30)).run(20, seed=2)
    flagged = [stats.srm(list(d.exposed_users.values()), d.weights).flagged for d in data]
    assert all(flagged)


def test_worse_ranker_is_detected_by_the_size_the_truth_says(model: UserModel):
    """Popularity-only ranking serves items of lower true utility; click-through falls by
    about what the model's expectation (``arm_truth``) says."""
    design = ab(Ranker(popularity=1.0), users=1000, candidates=30)
    truth = arm_truth(model, design)
    expected = truth["treatment"].click_through / truth["control"].click_through - 1
    assert truth["treatment"].utility < truth["control"].utility
    data = FastSimulator(model, design).run(10, seed=3)
    for comparison in _comparisons(data, "click_through", cuped=True):
        assert comparison.significant and comparison.relative.estimate < 0
        assert abs(comparison.relative.estimate - expected) < 0.1, (comparison, expected)
