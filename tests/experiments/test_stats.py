"""The statistics on their own: SRM, Holm, sample sizes (against statsmodels), the methods'
error rates on data with a known truth, CUPED's variance reduction and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from tastebud.config import MetricSpec, default_metrics
from tastebud.experiments.samples import VariantSample
from tastebud.experiments.stats import (
    InsufficientData,
    compare,
    holm,
    sample_size,
    sample_size_for,
    sample_size_proportion,
    srm,
)

METRICS = default_metrics()


def test_srm_flags_a_52_48_split_of_20k_on_a_50_50_design() -> None:
    result = srm([10_400, 9_600], [0.5, 0.5])
    assert result.flagged and result.chi2 == pytest.approx(32.0) and result.p_value < 1e-7
    assert result.expected == [10_000.0, 10_000.0]


def test_srm_passes_an_exact_split_and_small_noise() -> None:
    assert srm([10_000, 10_000], [0.5, 0.5]).p_value == pytest.approx(1.0)
    assert not srm([10_000, 10_000], [0.5, 0.5]).flagged
    assert not srm([10_080, 9_920], [0.5, 0.5]).flagged  # p = 0.26
    assert not srm([2_010, 6_000, 1_990], [0.2, 0.6, 0.2]).flagged


def test_srm_matches_scipy_on_unequal_weights_and_handles_no_users() -> None:
    result = srm([3_300, 6_700], [1, 2])
    assert result.p_value == pytest.approx(
        sps.chisquare([3_300, 6_700], [10_000 / 3, 20_000 / 3]).pvalue
    )
    assert srm([0, 0], [0.5, 0.5]).p_value == 1.0
    with pytest.raises(ValueError):
        srm([1, 2, 3], [0.5, 0.5])
    with pytest.raises(ValueError):
        srm([1, 2], [0.5, 0.0])


def test_holm_matches_statsmodels() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 12):
        p = rng.uniform(0, 0.2, size).tolist()
        expected = multipletests(p, method="holm")[1]
        assert holm(p) == pytest.approx(list(expected), abs=1e-12)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []


def test_sample_size_matches_statsmodels_normal_power() -> None:
    for mean, sd, effect in ((10.0, 8.0, 0.05), (0.3, 1.2, 0.1), (100.0, 40.0, 0.02)):
        d = effect * mean / sd
        expected = NormalIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1)
        assert abs(sample_size(mean, sd, effect, alpha=0.05) - expected) <= 1.0
    # The textbook value: (1.96 + 0.8416)² · 2 = 15.70 users per arm per (sd/effect)².
    assert sample_size(1.0, 1.0, 1.0) == 16
    with pytest.raises(ValueError):
        sample_size(0.0, 1.0, 0.1)


def test_sample_size_for_a_proportion_and_from_control_data() -> None:
    # 10% → 11% conversion needs about 14,750 users per arm (unpooled variances).
    assert 14_600 <= sample_size_proportion(0.10, 0.10) <= 14_800
    rng = np.random.default_rng(4)
    control = VariantSample(numerator=rng.binomial(1, 0.1, 20_000).astype(float))
    from_data = sample_size_for(METRICS["conversion"], control, 0.10)
    assert from_data is not None and abs(from_data - 14_130) < 1_500  # 2·7.85·0.09/0.01²
    assert sample_size_for(METRICS["latency_p95"], control, 0.1) is None


def _normal(rng: np.random.Generator, n: int, mean: float) -> VariantSample:
    return VariantSample(numerator=rng.normal(mean, 2.0, n))


def test_welch_false_positive_rate_and_coverage_on_aa_data() -> None:
    rng = np.random.default_rng(5)
    spec = METRICS["plays_per_user"]
    results = [compare(spec, _normal(rng, 300, 5), _normal(rng, 300, 5)) for _ in range(400)]
    rejected = sum(result.significant for result in results) / len(results)
    assert 0.02 <= rejected <= 0.08
    covered = [r.absolute.low <= 0 <= r.absolute.high for r in results]
    assert sum(covered) / len(covered) >= 0.92


def test_a_real_effect_is_found_with_the_right_sign_and_size() -> None:
    rng = np.random.default_rng(6)
    result = compare(METRICS["plays_per_user"], _normal(rng, 5_000, 5), _normal(rng, 5_000, 5.5))
    assert result.significant and result.relative.low < 0.1 < result.relative.high
    assert result.method == "welch" and result.n_treatment == 5_000


def test_cuped_reduces_variance_where_the_pre_period_predicts() -> None:
    rng = np.random.default_rng(7)
    arms = []
    for lift in (0.0, 0.3):
        taste = rng.gamma(2.0, 2.0, 4_000)
        arms.append(
            VariantSample(
                numerator=rng.poisson(taste + lift).astype(float),
                pre_numerator=rng.poisson(taste).astype(float),
            )
        )
    plain = compare(METRICS["plays_per_user"], *arms, cuped=False)
    adjusted = compare(METRICS["plays_per_user"], *arms)
    assert adjusted.method == "welch + cuped" and plain.variance_reduction is None
    assert adjusted.variance_reduction > 0.3
    width = adjusted.absolute.high - adjusted.absolute.low
    assert width < 0.85 * (plain.absolute.high - plain.absolute.low)
    assert adjusted.absolute.low < 0.3 < adjusted.absolute.high


def test_ratio_cuped_reduces_variance() -> None:
    rng = np.random.default_rng(8)
    arms = []
    for rate in (0.10, 0.11):
        taste = rng.beta(2, 15, 5_000)
        shown, shown_pre = rng.poisson(20, 5_000) + 1, rng.poisson(20, 5_000) + 1
        arms.append(
            VariantSample(
                numerator=rng.binomial(shown, np.clip(taste * rate / 0.1176, 0, 1)).astype(float),
                denominator=shown.astype(float),
                pre_numerator=rng.binomial(shown_pre, taste).astype(float),
                pre_denominator=shown_pre.astype(float),
            )
        )
    result = compare(METRICS["click_through"], *arms)
    assert result.method == "delta method + cuped"
    assert result.variance_reduction > 0.2
    plain = compare(METRICS["click_through"], *arms, cuped=False)
    assert plain.relative.low < 0.1 < plain.relative.high


def test_sequential_intervals_are_wider_and_contain_the_fixed_estimate() -> None:
    rng = np.random.default_rng(9)
    a, b = _normal(rng, 2_000, 5.0), _normal(rng, 2_000, 5.2)
    fixed = compare(METRICS["plays_per_user"], a, b)
    always = compare(METRICS["plays_per_user"], a, b, sequential=True)
    assert always.sequential and always.method.endswith("(sequential)")
    assert always.absolute.low < fixed.absolute.low < fixed.absolute.high < always.absolute.high
    assert always.p_value >= fixed.p_value


def test_quantile_interval_covers_a_known_latency_shift() -> None:
    rng = np.random.default_rng(10)
    spec = METRICS["latency_p95"]
    control = VariantSample(numerator=np.zeros(0), values=rng.exponential(50, 20_000))
    slower = VariantSample(numerator=np.zeros(0), values=rng.exponential(50, 20_000) + 20)
    result = compare(spec, control, slower)
    assert result.method == "quantile (order statistics)"
    assert result.absolute.low < 20 < result.absolute.high and result.significant
    true_p95 = -50 * math.log(0.05)
    assert abs(result.control - true_p95) < 10


def test_proportion_and_coverage() -> None:
    a = VariantSample(numerator=np.array([0, 2, 0, 1, 0, 0, 3, 0] * 50, dtype=float))
    b = VariantSample(numerator=np.array([1, 2, 0, 1, 0, 1, 3, 0] * 50, dtype=float))
    result = compare(METRICS["conversion"], a, b)
    assert result.control == pytest.approx(0.375) and result.treatment == pytest.approx(0.625)
    covered = compare(
        METRICS["coverage"],
        VariantSample(numerator=np.zeros(3), distinct=200, catalog=1_000),
        VariantSample(numerator=np.zeros(5), distinct=300, catalog=1_000),
    )
    assert covered.relative.estimate == pytest.approx(0.5) and covered.p_value is None
    assert covered.to_dict()["absolute"]["low"] is None


def test_too_little_data_is_a_clear_error() -> None:
    one = VariantSample(numerator=np.array([1.0]))
    with pytest.raises(InsufficientData, match="at least 2"):
        compare(METRICS["plays_per_user"], one, one)
    empty = VariantSample(numerator=np.zeros(4), denominator=np.zeros(4))
    with pytest.raises(InsufficientData, match="denominator"):
        compare(METRICS["click_through"], empty, empty)
    with pytest.raises(InsufficientData):
        compare(METRICS["latency_p95"], one, one)
    with pytest.raises(ValueError, match="alpha"):
        compare(METRICS["plays_per_user"], one, one, alpha=1.5)


def test_constant_arms_give_a_defined_answer() -> None:
    same = VariantSample(numerator=np.ones(10))
    result = compare(
        MetricSpec(kind="mean", numerator=METRICS["plays_per_user"].numerator), same, same
    )
    assert result.p_value == 1.0 and result.absolute.estimate == 0.0


def test_misaligned_or_non_finite_arrays_are_refused_by_name() -> None:
    good = VariantSample(numerator=np.ones(5), pre_numerator=np.ones(5))
    short = VariantSample(numerator=np.ones(5), pre_numerator=np.ones(4))
    with pytest.raises(ValueError, match="pre_numerator has 4 values for 5 users"):
        compare(METRICS["plays_per_user"], good, short)
    nan = VariantSample(numerator=np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="numerator holds a value that is not a finite"):
        compare(METRICS["plays_per_user"], good, nan)


def _ratio_arm(rng: np.random.Generator, n: int) -> VariantSample:
    shown = rng.poisson(8, n) + 1
    taste = rng.beta(1, 9, n)
    return VariantSample(
        numerator=rng.binomial(shown, taste).astype(float),
        denominator=shown.astype(float),
        pre_numerator=rng.binomial(shown, taste).astype(float),
        pre_denominator=shown.astype(float),
    )


def test_ratio_cuped_and_quantile_false_positive_rates_on_aa_data() -> None:
    rng = np.random.default_rng(11)
    ratio = [
        compare(METRICS["click_through"], _ratio_arm(rng, 400), _ratio_arm(rng, 400))
        for _ in range(300)
    ]
    assert 0.02 <= sum(r.significant for r in ratio) / len(ratio) <= 0.08
    assert all(r.method == "delta method + cuped" for r in ratio)
    spec = METRICS["latency_p95"]
    latency = [
        compare(
            spec,
            VariantSample(numerator=np.zeros(0), values=rng.lognormal(4, 0.5, 2_000)),
            VariantSample(numerator=np.zeros(0), values=rng.lognormal(4, 0.5, 2_000)),
        )
        for _ in range(300)
    ]
    assert 0.01 <= sum(r.significant for r in latency) / len(latency) <= 0.09


def test_always_valid_intervals_survive_peeking() -> None:
    """Ten looks at each of 200 A/A experiments: stopping at the first significant look
    rejects far more than alpha with fixed-n p-values, and stays below it sequentially."""
    rng = np.random.default_rng(12)
    spec = METRICS["plays_per_user"]
    looks = np.linspace(200, 2_000, 10).astype(int)
    fixed = always = 0
    for _ in range(200):
        a, b = rng.normal(5, 2, looks[-1]), rng.normal(5, 2, looks[-1])
        seen_fixed = seen_always = False
        for n in looks:
            arms = VariantSample(numerator=a[:n]), VariantSample(numerator=b[:n])
            seen_fixed |= compare(spec, *arms).significant
            seen_always |= compare(spec, *arms, sequential=True).significant
        fixed += seen_fixed
        always += seen_always
    assert fixed / 200 > 0.1  # peeking at fixed-n p-values: about 0.19 in theory
    assert always / 200 <= 0.05


def test_ratio_cuped_equals_the_matrix_form_of_the_delta_method() -> None:
    """The linearised-values code against the textbook form: per arm the covariance matrix
    Λ of (m, d, m_pre, d_pre) and the gradients of R_post and R_pre; theta summed over the
    arms (gbstats' later RegressionAdjustedRatioStatistic is written this way)."""
    rng = np.random.default_rng(13)
    arms = [_ratio_arm(rng, 3_000), _ratio_arm(rng, 3_200)]
    moments = []
    for arm in arms:
        columns = np.vstack(
            [arm.numerator, arm.denominator, arm.pre_numerator, arm.pre_denominator]
        )
        mu = columns.mean(axis=1)
        post = np.array([1 / mu[1], -mu[0] / mu[1] ** 2, 0, 0])
        pre = np.array([0, 0, 1 / mu[3], -mu[2] / mu[3] ** 2])
        moments.append((mu, np.cov(columns, ddof=1), post, pre, columns.shape[1]))
    theta = sum(p @ lam @ q for _, lam, p, q, _ in moments) / sum(
        q @ lam @ q for _, lam, _, q, _ in moments
    )
    estimates = [mu[0] / mu[1] - theta * mu[2] / mu[3] for mu, *_ in moments]
    variances = [(p - theta * q) @ lam @ (p - theta * q) / n for _, lam, p, q, n in moments]
    delta = estimates[1] - estimates[0]
    df = sum(variances) ** 2 / sum(
        v**2 / (m[4] - 1) for v, m in zip(variances, moments, strict=True)
    )
    half = sps.t.ppf(0.975, df) * math.sqrt(sum(variances))
    result = compare(METRICS["click_through"], *arms)
    assert result.absolute.estimate == pytest.approx(delta, abs=1e-12)
    assert result.absolute.low == pytest.approx(delta - half, abs=1e-10)
    assert result.absolute.high == pytest.approx(delta + half, abs=1e-10)
