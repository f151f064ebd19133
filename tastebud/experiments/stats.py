"""The statistics that judge an experiment, independent of where the per-user data came from
(``samples.VariantSample``). scipy computes the distributions; the formulas follow GrowthBook's
frequentist engine (``gbstats``), and ``tests/experiments/test_gbstats_parity.py`` checks the
numbers against it on the same data. Over 400 lines because it is the whole statistical
contract the analysis and the simulator import (compare, srm, holm, sample sizes), each
formula written next to its code.

Every comparison reduces each arm to (estimate, per-user variance, n) and then:

- absolute lift ``Δ = m_B - m_A`` with Welch's standard error ``√(v_A/n_A + v_B/n_B)`` and
  the Welch-Satterthwaite degrees of freedom ``(v_A/n_A + v_B/n_B)² /
  Σ (v/n)²/(n-1)``; its p-value is the two-sided Welch t-test of ``Δ = 0``;
- relative lift ``Δ / m_A`` with the delta-method variance of a ratio of independent means,
  ``v_B/(m_A² n_B) + v_A m_B²/(m_A⁴ n_A)`` and the same t quantile (gbstats' relative test);
- ``mean``: the per-user values; ``proportion``: per user 1 if the numerator is above zero,
  else 0, then the same (the sample variance, n-1; gbstats' ProportionStatistic uses
  p(1-p), which differs by n/(n-1));
- ``ratio``: Σnumerator/Σdenominator, its variance by the delta method (Deng et al. 2018,
  "Applying the Delta Method in Metric Analytics"): each user's linearised value
  ``(m_i - R d_i)/μ_d`` has exactly the sample variance ``v_m/μ_d² - 2R c_md/μ_d² +
  R² v_d/μ_d²`` that gbstats' RatioStatistic computes;
- CUPED (Deng et al. 2013): ``m_adj = m - θ x̄`` with the pre-period covariate x and θ
  pooled over both arms, per-arm variance ``v_y + θ² v_x - 2θ c_xy``. For a mean θ is the
  covariance over the two arms' users together divided by the covariate's variance
  (gbstats' compute_theta); for a ratio, the linearised post and pre ratios give
  ``θ = Σ_arms c(l_post, l_pre) / Σ_arms v(l_pre)`` and ``R_adj = R_post - θ R_pre``
  (gbstats' RegressionAdjustedRatioStatistic). The relative lift divides by control's
  unadjusted value, as gbstats does. Variance reduction = ``1 - Var(Δ_adj)/Var(Δ)``;
- ``quantile`` (latency p95): the sample quantile of each arm's values; its standard error
  from the distribution-free order-statistic interval: with z = z_{0.975}, the order
  statistics at ranks ``nq -/+ z√(nq(1-q))`` bound a 95% interval whose width / 2z is the
  standard error (the same reading gbstats' QuantileStatistic makes). The difference uses
  the normal distribution (df = ∞). It treats values as independent; values from one user
  are not quite, so the interval is somewhat narrow when a few users dominate;
- ``coverage``: point estimates only (one number per arm; no per-user spread).

Sequential (always-valid) intervals replace the fixed-n half-width with the asymptotic
confidence sequence of Waudby-Smith et al. (2023, "Time-uniform central limit theory",
arXiv:2103.06476, eq. 9; the normal mixture of Howard et al. 2021), as gbstats'
SequentialTwoSidedTTest: with N = n_A + n_B, s² = N · Var(Δ̂) and tuning τ,

    rho² = (-2 ln alpha + ln(-2 ln alpha + 1)) / τ
    half-width = s · √( 2(Nrho² + 1) / (N²rho²) · ln(√(Nrho² + 1) / alpha) )

and the always-valid p-value is ``min(1, 1/E)`` with the normal-mixture e-value of eq. 155,
``E = exp(rho² N Δ̂² / (2 Var(Δ̂) (Nrho² + 1))) / √(Nrho² + 1)``. Peeking any number of times
keeps the error rate below alpha. The tuning τ is the total sample size near which the
sequence is tightest (gbstats' ``sequential_tuning_parameter``, default 5,000).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from tastebud.config import MetricSpec
from tastebud.experiments.samples import VariantSample

SEQUENTIAL_TUNING = 5_000.0  # gbstats' default: the sample size the sequence is tuned for
QUANTILE_Z = float(sps.norm.ppf(0.975))


class InsufficientData(ValueError):
    """Too few users (or values) in an arm to estimate a variance."""


@dataclass(frozen=True)
class Lift:
    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric. ``control``/``treatment`` are the metric's
    values (unadjusted); the lifts are CUPED-adjusted when ``variance_reduction`` is set."""

    method: str
    control: float
    treatment: float
    n_control: int
    n_treatment: int
    absolute: Lift
    relative: Lift
    p_value: float | None
    variance_reduction: float | None = None
    sequential: bool = False
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


@dataclass(frozen=True)
class SrmResult:
    """The sample-ratio test: observed counts against the designed weights."""

    observed: list[int]
    expected: list[float]
    chi2: float
    p_value: float
    flagged: bool
    threshold: float = 0.001

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


@dataclass(frozen=True)
class _Arm:
    mean: float  # the estimate the lift uses (CUPED-adjusted when adjusted)
    unadjusted: float
    var: float  # per-user variance of the estimate's influence values
    n: int
    var_unadjusted: float = field(default=math.nan)


def compare(
    spec: MetricSpec,
    control: VariantSample,
    treatment: VariantSample,
    *,
    alpha: float = 0.05,
    cuped: bool = True,
    sequential: bool = False,
    tuning: float = SEQUENTIAL_TUNING,
) -> Comparison:
    """Treatment against control on one metric, by the method its kind calls for (see the
    module docstring). Raises ``InsufficientData`` when an arm has too few users."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if spec.kind == "coverage":
        return _coverage(control, treatment, alpha)
    if spec.kind == "quantile":
        a, b = _quantile_arm(control, spec.quantile), _quantile_arm(treatment, spec.quantile)
        return _lifts(a, b, "quantile (order statistics)", alpha, sequential, tuning, math.inf)
    build = _ratio_arms if spec.kind == "ratio" else _mean_arms
    a, b, adjusted = build(control, treatment, cuped, spec.kind == "proportion")
    method = {"mean": "welch", "proportion": "welch (0/1)", "ratio": "delta method"}[spec.kind]
    reduction = None
    if adjusted:
        method += " + cuped"
        before = a.var_unadjusted / a.n + b.var_unadjusted / b.n
        reduction = 1.0 - (a.var / a.n + b.var / b.n) / before if before > 0 else None
    result = _lifts(a, b, method, alpha, sequential, tuning, _welch_df(a, b))
    return _replace(result, variance_reduction=reduction)


def _replace(comparison: Comparison, **changes: Any) -> Comparison:
    return Comparison(**{**comparison.__dict__, **changes})


def _values(sample: VariantSample, proportion: bool, pre: bool) -> np.ndarray | None:
    raw = sample.pre_numerator if pre else sample.numerator
    if raw is None:
        return None
    values = np.asarray(raw, dtype=float)
    return (values > 0).astype(float) if proportion and not pre else values


def _check_users(*samples: VariantSample) -> None:
    """At least two users per arm, and per-user arrays that line up and hold numbers."""
    for sample in samples:
        if sample.users < 2:
            raise InsufficientData(f"{sample.users} user(s) in an arm; at least 2 are needed")
        for name in ("numerator", "denominator", "pre_numerator", "pre_denominator"):
            values = getattr(sample, name)
            if values is None:
                continue
            if len(values) != sample.users:
                raise ValueError(f"{name} has {len(values)} values for {sample.users} users")
            if not np.all(np.isfinite(np.asarray(values, dtype=float))):
                raise ValueError(f"{name} holds a value that is not a finite number")


def _mean_arms(
    control: VariantSample, treatment: VariantSample, cuped: bool, proportion: bool
) -> tuple[_Arm, _Arm, bool]:
    """Per-arm means and variances; CUPED with θ from both arms' users together."""
    _check_users(control, treatment)
    ys = [_values(s, proportion, pre=False) for s in (control, treatment)]
    xs = [_values(s, proportion, pre=True) for s in (control, treatment)]
    theta = 0.0
    if cuped and xs[0] is not None and xs[1] is not None:
        x_all, y_all = np.concatenate(xs), np.concatenate(ys)
        var_x = float(np.var(x_all, ddof=1))
        if var_x > 0 and float(np.var(y_all, ddof=1)) > 0:
            theta = float(np.cov(y_all, x_all, ddof=1)[0, 1]) / var_x
    arms = []
    for y, x in zip(ys, xs, strict=True):
        var_y = float(np.var(y, ddof=1))
        if theta:
            cov = np.cov(y, x, ddof=1)
            var = var_y + theta**2 * float(cov[1, 1]) - 2 * theta * float(cov[0, 1])
            mean = float(y.mean()) - theta * float(x.mean())
        else:
            var, mean = var_y, float(y.mean())
        arms.append(_Arm(mean, float(y.mean()), max(var, 0.0), len(y), var_y))
    return arms[0], arms[1], bool(theta)


def _linearised(m: np.ndarray, d: np.ndarray) -> tuple[float, np.ndarray]:
    """The ratio Σm/Σd and each user's influence value (m_i - R d_i)/μ_d (delta method)."""
    mu_d = float(d.mean())
    if mu_d == 0:
        raise InsufficientData("the ratio's denominator is zero in an arm")
    ratio = float(m.mean()) / mu_d
    return ratio, (m - ratio * d) / mu_d


def _ratio_arms(
    control: VariantSample, treatment: VariantSample, cuped: bool, _proportion: bool
) -> tuple[_Arm, _Arm, bool]:
    """Per-arm ratios with delta-method variances; CUPED on the linearised pre ratio with θ
    summed over the arms (gbstats' compute_theta_regression_adjusted_ratio)."""
    _check_users(control, treatment)
    post, pre = [], []
    for sample in (control, treatment):
        if sample.denominator is None:
            raise ValueError("a ratio metric's sample needs a denominator")
        num, den = np.asarray(sample.numerator, float), np.asarray(sample.denominator, float)
        post.append(_linearised(num, den))
        if sample.pre_numerator is not None and sample.pre_denominator is not None:
            pre_num = np.asarray(sample.pre_numerator, float)
            pre_den = np.asarray(sample.pre_denominator, float)
            pre.append(_linearised(pre_num, pre_den) if pre_den.mean() != 0 else None)
    theta = 0.0
    use = cuped and len(pre) == 2 and all(p is not None for p in pre)
    if use:
        var_pre = sum(float(np.var(p[1], ddof=1)) for p in pre)
        cov = sum(float(np.cov(q[1], p[1], ddof=1)[0, 1]) for q, p in zip(post, pre, strict=True))
        theta = cov / var_pre if var_pre > 0 else 0.0
        if abs(theta) < 1e-8:
            theta = 0.0
    arms = []
    for index, (ratio, lin) in enumerate(post):
        var_post = float(np.var(lin, ddof=1))
        mean, var = ratio, var_post
        if theta:
            pre_ratio, pre_lin = pre[index]
            cov = float(np.cov(lin, pre_lin, ddof=1)[0, 1])
            mean = ratio - theta * pre_ratio
            var = var_post + theta**2 * float(np.var(pre_lin, ddof=1)) - 2 * theta * cov
        arms.append(_Arm(mean, ratio, max(var, 0.0), len(lin), var_post))
    return arms[0], arms[1], bool(theta)


def _quantile_arm(sample: VariantSample, q: float) -> _Arm:
    """The sample quantile (numpy's default, linear between order statistics) with its
    order-statistic standard error (module docstring). A partial sort: O(n), not n log n."""
    values = np.asarray(sample.values if sample.values is not None else [], float)
    n = len(values)
    if n * min(q, 1 - q) < 5:
        raise InsufficientData(f"{n} value(s) are too few to estimate the {q:g} quantile")
    if not np.all(np.isfinite(values)):
        raise ValueError("values holds a value that is not a finite number")
    spread = QUANTILE_Z * math.sqrt(n * q * (1 - q))
    low = max(0, math.floor(n * q - spread) - 1)
    high = min(n - 1, math.ceil(n * q + spread) - 1)
    position = (n - 1) * q
    below, above = math.floor(position), min(n - 1, math.floor(position) + 1)
    ordered = np.partition(values, sorted({low, high, below, above}))
    estimate = float(ordered[below] + (ordered[above] - ordered[below]) * (position - below))
    se = float(ordered[high] - ordered[low]) / (2 * QUANTILE_Z)
    return _Arm(estimate, estimate, se**2 * n, n, se**2 * n)


def _coverage(control: VariantSample, treatment: VariantSample, alpha: float) -> Comparison:
    def share(sample: VariantSample) -> float:
        if not sample.catalog or sample.distinct is None:
            raise InsufficientData("a coverage sample needs distinct and catalog counts")
        return sample.distinct / sample.catalog

    a, b = share(control), share(treatment)
    relative = (b - a) / a if a else None
    return Comparison(
        method="coverage (point estimate)",
        control=a,
        treatment=b,
        n_control=control.users,
        n_treatment=treatment.users,
        absolute=Lift(b - a, None, None),
        relative=Lift(relative, None, None),
        p_value=None,
        alpha=alpha,
    )


def _welch_df(a: _Arm, b: _Arm) -> float:
    ua, ub = a.var / a.n, b.var / b.n
    denominator = ua**2 / (a.n - 1) + ub**2 / (b.n - 1)
    return (ua + ub) ** 2 / denominator if denominator > 0 else math.inf


def _lifts(
    a: _Arm, b: _Arm, method: str, alpha: float, sequential: bool, tuning: float, df: float
) -> Comparison:
    """Absolute and relative lifts with intervals and the p-value (fixed-n or sequential)."""
    delta = b.mean - a.mean
    var_abs = a.var / a.n + b.var / b.n
    rel = var_rel = None
    if a.unadjusted != 0:
        rel = delta / a.unadjusted
        var_rel = b.var / (a.unadjusted**2 * b.n) + a.var * b.unadjusted**2 / (
            a.unadjusted**4 * a.n
        )
    n_total = a.n + b.n
    if sequential:
        half_abs = _sequential_half_width(var_abs, n_total, alpha, tuning)
        half_rel = (
            None if var_rel is None else _sequential_half_width(var_rel, n_total, alpha, tuning)
        )
        p_value = _sequential_p(delta, var_abs, n_total, alpha, tuning)
        method += " (sequential)"
    else:
        quantile = (
            float(sps.t.ppf(1 - alpha / 2, df))
            if math.isfinite(df)
            else float(sps.norm.ppf(1 - alpha / 2))
        )
        half_abs = quantile * math.sqrt(var_abs)
        half_rel = None if var_rel is None else quantile * math.sqrt(var_rel)
        p_value = _t_p(delta, var_abs, df)
    return Comparison(
        method=method,
        control=a.unadjusted,
        treatment=b.unadjusted,
        n_control=a.n,
        n_treatment=b.n,
        absolute=Lift(delta, delta - half_abs, delta + half_abs),
        relative=Lift(rel, None, None)
        if rel is None or half_rel is None
        else Lift(rel, rel - half_rel, rel + half_rel),
        p_value=p_value,
        sequential=sequential,
        alpha=alpha,
    )


def _t_p(delta: float, var: float, df: float) -> float:
    if var <= 0:
        return 1.0 if delta == 0 else 0.0
    statistic = abs(delta) / math.sqrt(var)
    tail = sps.t.sf(statistic, df) if math.isfinite(df) else sps.norm.sf(statistic)
    return float(min(1.0, 2 * tail))


def _rho_squared(alpha: float, tuning: float) -> float:
    # Waudby-Smith et al. eq. 161: rho tuned so the sequence is tightest near N = tuning.
    return (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning


def _sequential_half_width(var: float, n: int, alpha: float, tuning: float) -> float:
    """Eq. 9 of Waudby-Smith et al.: the asymptotic confidence sequence's half-width."""
    rho2 = _rho_squared(alpha, tuning)
    s2 = var * n
    factor = 2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    return math.sqrt(s2) * math.sqrt(factor)


def _sequential_p(delta: float, var: float, n: int, alpha: float, tuning: float) -> float:
    """Eq. 155: the always-valid p-value, 1/E for the normal-mixture e-value E."""
    if var <= 0:
        return 1.0 if delta == 0 else 0.0
    rho2 = _rho_squared(alpha, tuning)
    st2 = delta**2 * n / var
    tr2p1 = n * rho2 + 1
    log_e = rho2 * st2 / (2 * tr2p1) - 0.5 * math.log(tr2p1)
    return float(min(1.0, math.exp(-log_e)))


def srm(
    observed: Sequence[int], weights: Sequence[float], *, threshold: float = 0.001
) -> SrmResult:
    """Chi-square goodness of fit of the users counted per variant against the designed
    weights; ``flagged`` when p < ``threshold`` (settings.experiments.srm_p)."""
    counts = [int(count) for count in observed]
    if len(counts) != len(weights) or len(counts) < 2:
        raise ValueError("observed and weights need one entry per variant (two or more)")
    if any(count < 0 for count in counts) or any(w <= 0 for w in weights):
        raise ValueError("counts must be non-negative and weights positive")
    total, weight_sum = sum(counts), math.fsum(weights)
    expected = [total * w / weight_sum for w in weights]
    if total == 0:
        return SrmResult(counts, expected, 0.0, 1.0, False, threshold)
    chi2, p_value = sps.chisquare(counts, expected)
    flagged = bool(p_value < threshold)
    return SrmResult(counts, expected, float(chi2), float(p_value), flagged, threshold)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, by hand (statsmodels' ``multipletests(...,
    method='holm')`` gives the same; the tests check): sorted ascending, the k-th smallest
    is multiplied by (m - k), made monotone, capped at 1, returned in input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda index: p_values[index])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


def _z_sum(alpha: float, power: float) -> float:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must lie in (0, 1)")
    return float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))


def sample_size(
    baseline_mean: float,
    baseline_sd: float,
    minimum_effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Users per variant for a two-sided test to detect a relative lift of
    ``minimum_effect`` with ``power``: ``n = 2 (z_{1-alpha/2} + z_{power})² σ² / (δ μ)²``."""
    if baseline_mean == 0 or baseline_sd <= 0 or minimum_effect <= 0:
        raise ValueError("need a non-zero baseline mean, a positive sd and a positive effect")
    effect = minimum_effect * abs(baseline_mean)
    return math.ceil(2 * _z_sum(alpha, power) ** 2 * baseline_sd**2 / effect**2)


def sample_size_proportion(
    baseline_rate: float, minimum_effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per variant for a conversion rate ``p`` to move to ``p(1 + δ)``, with each
    arm's own variance: ``n = (z_{1-alpha/2} + z_{power})² (p₁q₁ + p₂q₂) / (p₂ - p₁)²``."""
    if not 0 < baseline_rate < 1 or minimum_effect <= 0:
        raise ValueError("need a baseline rate in (0, 1) and a positive effect")
    p1, p2 = baseline_rate, min(baseline_rate * (1 + minimum_effect), 1.0 - 1e-12)
    spread = p1 * (1 - p1) + p2 * (1 - p2)
    return math.ceil(_z_sum(alpha, power) ** 2 * spread / (p2 - p1) ** 2)


def sample_size_for(
    spec: MetricSpec,
    control: VariantSample,
    minimum_effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int | None:
    """The per-variant size read off control's data: its per-user mean and sd (the
    linearised values' sd for a ratio). None for kinds without a per-user spread, or when
    control has too little data to say."""
    if spec.kind in ("quantile", "coverage") or control.users < 2:
        return None
    try:
        if spec.kind == "ratio":
            if control.denominator is None:
                return None
            mean, lin = _linearised(
                np.asarray(control.numerator, float), np.asarray(control.denominator, float)
            )
            sd = float(np.std(lin, ddof=1))
        else:
            values = _values(control, spec.kind == "proportion", pre=False)
            mean, sd = float(values.mean()), float(np.std(values, ddof=1))
        return sample_size(mean, sd, minimum_effect, alpha=alpha, power=power)
    except (InsufficientData, ValueError):
        return None


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if isinstance(value, np.bool_):
        return bool(value)
    return value
