"""Our statistics against GrowthBook's own engine (``gbstats``, its frequentist tests) on the
same generated data: the same effects, intervals and p-values to 1e-6 where the methods
coincide.

Where they differ, on purpose:

- p-values: ours is the Welch test of the absolute difference; gbstats reports the test of
  whichever difference it was asked for, so its "relative" p-value (a delta-method z on the
  relative lift) differs slightly from ours. Both its absolute p-value and its relative
  estimate and interval equal ours.
- proportions: we take the per-user 0/1 sample variance (n-1); gbstats' ProportionStatistic
  uses p(1-p). Fed the 0/1 values as a SampleMeanStatistic, gbstats gives our numbers
  exactly; its ProportionStatistic differs by the factor n/(n-1) in the variance.
- ratio CUPED: gbstats 0.8.0 (the release on PyPI) has no RegressionAdjustedRatioStatistic;
  ours follows the later gbstats formula (theta summed over the arms on the linearised
  ratios), checked in test_stats.py by its variance reduction.
- quantiles: gbstats takes the quantile's bounds from SQL; we compute the order-statistic
  bounds ourselves, so there is no shared input to compare on.

gbstats 0.8.0 pins numpy<2 and pandas<2 in its metadata but runs on the versions tastebud
uses; the Makefile installs it without its dependencies (pyproject.toml, dev extra).
"""

from __future__ import annotations

import numpy as np
import pytest

try:
    from gbstats.frequentist.tests import (
        FrequentistConfig,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )
    from gbstats.models.statistics import (
        ProportionStatistic,
        RatioStatistic,
        RegressionAdjustedStatistic,
        SampleMeanStatistic,
    )
    from gbstats.utils import check_srm
except ImportError:  # a clear message, not a skip: the parity is the proof
    pytest.fail(
        "gbstats is missing: `make .venv/.installed` installs it "
        "(pip install --no-deps 'gbstats==0.8.0')",
        pytrace=False,
    )

from tastebud.config import default_metrics
from tastebud.experiments.samples import VariantSample
from tastebud.experiments.stats import Comparison, Lift, compare, srm

METRICS = default_metrics()
TOLERANCE = 1e-6


def _mean_stat(values: np.ndarray) -> SampleMeanStatistic:
    return SampleMeanStatistic(
        n=len(values), sum=float(values.sum()), sum_squares=float((values**2).sum())
    )


def _ratio_stat(num: np.ndarray, den: np.ndarray) -> RatioStatistic:
    return RatioStatistic(
        n=len(num),
        m_statistic=_mean_stat(num),
        d_statistic=_mean_stat(den),
        m_d_sum_of_products=float((num * den).sum()),
    )


def _cuped_stat(post: np.ndarray, pre: np.ndarray) -> RegressionAdjustedStatistic:
    return RegressionAdjustedStatistic(
        n=len(post),
        post_statistic=_mean_stat(post),
        pre_statistic=_mean_stat(pre),
        post_pre_sum_of_products=float((post * pre).sum()),
        theta=0,  # gbstats computes the pooled theta when the test is built
    )


def _gbstats(test: type, stat_a: object, stat_b: object, difference: str, **config: float):
    make = SequentialConfig if test is SequentialTwoSidedTTest else FrequentistConfig
    return test(stat_a, stat_b, make(difference_type=difference, **config)).compute_result()


def _assert_same(ours: Comparison, test: type, stat_a: object, stat_b: object, **config) -> None:
    absolute = _gbstats(test, stat_a, stat_b, "absolute", **config)
    relative = _gbstats(test, stat_a, stat_b, "relative", **config)
    assert absolute.error_message is None and relative.error_message is None
    _assert_lift(ours.absolute, absolute.expected, absolute.ci)
    _assert_lift(ours.relative, relative.expected, relative.ci)
    assert ours.p_value == pytest.approx(absolute.p_value, rel=TOLERANCE, abs=1e-12)


def _assert_lift(lift: Lift, expected: float, ci: list[float]) -> None:
    scale = max(1.0, abs(expected))
    assert lift.estimate == pytest.approx(expected, abs=TOLERANCE * scale)
    assert lift.low == pytest.approx(ci[0], abs=TOLERANCE * scale)
    assert lift.high == pytest.approx(ci[1], abs=TOLERANCE * scale)


@pytest.fixture(scope="module")
def plays() -> tuple[VariantSample, VariantSample]:
    """Skewed counts with a pre-period that predicts them, 3% lift, unequal arms."""
    rng = np.random.default_rng(18)
    arms = []
    for n, lift in ((3_000, 1.0), (3_300, 1.03)):
        taste = rng.gamma(1.5, 3.0, n)
        arms.append(
            VariantSample(
                numerator=rng.poisson(taste * lift).astype(float),
                pre_numerator=rng.poisson(taste).astype(float),
            )
        )
    return arms[0], arms[1]


@pytest.fixture(scope="module")
def clicks() -> tuple[VariantSample, VariantSample]:
    rng = np.random.default_rng(19)
    arms = []
    for n, rate in ((2_500, 0.08), (2_600, 0.09)):
        shown = rng.poisson(12, n) + 1
        taste = rng.beta(2, 2 / rate - 2, n)
        arms.append(
            VariantSample(
                numerator=rng.binomial(shown, taste).astype(float),
                denominator=shown.astype(float),
            )
        )
    return arms[0], arms[1]


def test_welch_means_match(plays: tuple[VariantSample, VariantSample]) -> None:
    a, b = plays
    ours = compare(METRICS["plays_per_user"], a, b, cuped=False)
    _assert_same(ours, TwoSidedTTest, _mean_stat(a.numerator), _mean_stat(b.numerator))
    assert ours.control == pytest.approx(a.numerator.mean())


def test_cuped_matches_regression_adjusted_statistic(
    plays: tuple[VariantSample, VariantSample],
) -> None:
    a, b = plays
    ours = compare(METRICS["plays_per_user"], a, b)
    assert ours.method == "welch + cuped" and ours.variance_reduction > 0.2
    stats = [_cuped_stat(s.numerator, s.pre_numerator) for s in (a, b)]
    _assert_same(ours, TwoSidedTTest, *stats)


def test_delta_method_ratio_matches_ratio_statistic(
    clicks: tuple[VariantSample, VariantSample],
) -> None:
    a, b = clicks
    ours = compare(METRICS["click_through"], a, b)
    assert ours.method == "delta method"
    stats = [_ratio_stat(s.numerator, s.denominator) for s in (a, b)]
    _assert_same(ours, TwoSidedTTest, *stats)


@pytest.mark.parametrize("tuning", [5_000.0, 20_000.0])
def test_sequential_matches_on_means_cuped_and_ratios(
    plays: tuple[VariantSample, VariantSample],
    clicks: tuple[VariantSample, VariantSample],
    tuning: float,
) -> None:
    a, b = plays
    config = {"sequential_tuning_parameter": tuning}
    ours = compare(METRICS["plays_per_user"], a, b, cuped=False, sequential=True, tuning=tuning)
    _assert_same(
        ours, SequentialTwoSidedTTest, _mean_stat(a.numerator), _mean_stat(b.numerator), **config
    )
    ours = compare(METRICS["plays_per_user"], a, b, sequential=True, tuning=tuning)
    stats = [_cuped_stat(s.numerator, s.pre_numerator) for s in (a, b)]
    _assert_same(ours, SequentialTwoSidedTTest, *stats, **config)
    c, d = clicks
    ours = compare(METRICS["click_through"], c, d, sequential=True, tuning=tuning)
    stats = [_ratio_stat(s.numerator, s.denominator) for s in (c, d)]
    _assert_same(ours, SequentialTwoSidedTTest, *stats, **config)


def test_proportions_match_as_sample_means_and_differ_by_n_over_n_minus_1() -> None:
    rng = np.random.default_rng(20)
    a = VariantSample(numerator=rng.poisson(0.12, 4_000).astype(float))
    b = VariantSample(numerator=rng.poisson(0.14, 4_000).astype(float))
    ours = compare(METRICS["conversion"], a, b)
    zero_one = [(s.numerator > 0).astype(float) for s in (a, b)]
    _assert_same(ours, TwoSidedTTest, *[_mean_stat(v) for v in zero_one])
    theirs = _gbstats(
        TwoSidedTTest,
        *[ProportionStatistic(n=len(v), sum=float(v.sum())) for v in zero_one],
        "absolute",
    )
    ours_width = ours.absolute.high - ours.absolute.low
    theirs_width = theirs.ci[1] - theirs.ci[0]
    assert theirs_width < ours_width
    assert ours_width / theirs_width == pytest.approx(np.sqrt(4_000 / 3_999), rel=1e-4)


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([10_400, 9_600], [0.5, 0.5]),
        ([5_050, 4_950], [0.5, 0.5]),
        ([2_100, 5_800, 2_100], [0.2, 0.6, 0.2]),
    ],
)
def test_srm_matches_check_srm(observed: list[int], weights: list[float]) -> None:
    assert srm(observed, weights).p_value == pytest.approx(check_srm(observed, weights), rel=1e-9)
