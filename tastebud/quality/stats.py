"""The statistics of the drift and volume checks.

PSI (population stability index) is written here: it is one line of arithmetic over two
histograms, and the libraries that ship it (evidently, nannyml...) would bring a dashboard
stack for that line. The one choice in it is the floor for empty bins (``EPSILON``): without
it a category present on one side only makes PSI infinite, and every tool picks some floor.
The tests of significance are scipy's: a chi-square test of two histograms, the two-sample
Kolmogorov-Smirnov test of two samples, and the tails of an hour's event count (Poisson, or
negative binomial when counts are overdispersed).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPSILON = 1e-4  # the share an empty bin is taken to have (see the module docstring)


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Sum over bins of (current - reference) x ln(current / reference), on shares. Rules of
    thumb: under 0.1 stable, 0.1-0.25 a shift worth a look, over 0.25 a real change. NaN when
    either side is empty."""
    expected = np.asarray(reference, dtype=np.float64)
    actual = np.asarray(current, dtype=np.float64)
    if expected.sum() <= 0 or actual.sum() <= 0:
        return math.nan
    expected = np.maximum(expected / expected.sum(), EPSILON)
    actual = np.maximum(actual / actual.sum(), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def chi_square_p(reference: Sequence[float], current: Sequence[float]) -> float:
    """p-value of "both histograms come from one distribution" (chi-square test of a 2 x k
    contingency table; bins empty on both sides dropped). NaN when it cannot be computed."""
    # lazy: scipy.stats waits for a test (quality history starts without it)
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(reference, float), np.asarray(current, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return math.nan
    return float(chi2_contingency(table).pvalue)


def ks_p(reference: Sequence[float], current: Sequence[float]) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test (NaN for an empty sample)."""
    # lazy: scipy.stats waits for a test (quality history starts without it)
    from scipy.stats import ks_2samp

    if len(reference) == 0 or len(current) == 0:
        return math.nan
    return float(ks_2samp(np.asarray(reference), np.asarray(current)).pvalue)


def count_tails(count: int, expected: float, dispersion: float = 1.0) -> tuple[float, float]:
    """P(X <= count) and P(X >= count): how unlikely a low or a high hourly count is by
    chance alone. X is Poisson(expected) when ``dispersion`` (variance over mean) is 1, and
    negative binomial with that variance when it is more: events arrive in bursts (a
    session, an interaction's follow-ups), so hourly counts vary more than Poisson's."""
    # lazy: scipy.stats waits for a test (quality history starts without it)
    from scipy.stats import nbinom, poisson

    if dispersion <= 1.0 + 1e-9:
        return float(poisson.cdf(count, expected)), float(poisson.sf(count - 1, expected))
    size, chance = expected / (dispersion - 1.0), 1.0 / dispersion
    return float(nbinom.cdf(count, size, chance)), float(nbinom.sf(count - 1, size, chance))


def seasonal_fit(history: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """For a days x hours matrix of counts: each hour's median over the days, each day's
    level (its median ratio to those), and the dispersion of the counts around
    median x level (variance over mean, at least 1 = Poisson). The mean of the squared
    residuals, not a robust median: hourly counts are heavy-tailed (a few very active users'
    sessions), and a median underestimates that spread into false alarms. Only previous days
    go in, so the hour being judged never widens its own yardstick."""
    profile = np.median(history, axis=0)
    usable = profile > 0
    if not usable.any():
        return profile, np.ones(len(history)), 1.0
    levels = np.median(history[:, usable] / profile[usable], axis=1)
    expected = np.outer(levels, profile)[:, usable]
    residuals = (history[:, usable] - expected) ** 2 / np.maximum(expected, 1e-9)
    spread = float(np.mean(residuals)) if residuals.size else 1.0
    return profile, levels, max(1.0, spread)


def activity_bins(counts: Sequence[int]) -> np.ndarray:
    """Users per power-of-two bin of events per user (1, 2-3, 4-7, ... 512+): the histogram
    PSI compares for user activity."""
    values = np.asarray(counts, dtype=np.int64)
    bins = np.minimum(np.floor(np.log2(np.maximum(values, 1))).astype(np.int64), 9)
    return np.bincount(bins, minlength=10).astype(np.float64)


@dataclass(frozen=True)
class SessionHours:
    """Per hour (the last axis): sessions seen, the events they carry and the sum of each
    session's squared event count, from which the spread of the mean session size follows."""

    sessions: np.ndarray
    events: np.ndarray
    squares: np.ndarray

    def log_size(self) -> np.ndarray:
        """ln(events per session); NaN where an hour has fewer than two sessions."""
        sessions = np.where(self.sessions >= 2, self.sessions, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(self.events / sessions)

    def size_variance(self) -> np.ndarray:
        """Per hour, the relative variance of one session's event count (variance over the
        squared mean), pooled over the days (axis 0): one day's few night sessions would
        guess it badly, and heavy-tailed sessions make a small sample's guess too small.
        At least Poisson's (1 / mean)."""
        sessions, events = self.sessions.sum(axis=0), self.events.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = events / sessions
            variance = np.maximum(self.squares.sum(axis=0) / sessions - mean**2, mean)
            return variance / mean**2


def per_session_z(current: SessionHours, history: SessionHours) -> tuple[np.ndarray, np.ndarray]:
    """Events per session in each hour against the same hour on previous days (``history``:
    days x hours): the ratio to their median and a z-score (the log ratio over its sampling
    error, sqrt(relative size variance / sessions)), scaled by how far the previous days'
    own hours stray from the median of the other days (a robust spread, MAD / 0.6745, at
    least 1). A busier or quieter day has more or fewer sessions, not smaller ones, so the
    level of the day cancels; an outage that loses events at random keeps the sessions and
    shrinks them. NaN where an hour has fewer than two usable previous days."""
    past = history.log_size()
    relative = history.size_variance()
    days = np.sum(np.isfinite(past), axis=0)
    expected = nan_median(past)
    inflate = 1.0 + math.pi / (2.0 * np.maximum(days, 1))  # the noise of a median of k
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (current.log_size() - expected) / np.sqrt(relative / current.sessions * inflate)
    loo = [leave_one_out(past, relative / history.sessions[day], day) for day in range(len(past))]
    finite = np.concatenate(loo)[np.isfinite(np.concatenate(loo))] if loo else np.zeros(0)
    spread = max(1.0, float(np.median(np.abs(finite))) / 0.6745) if finite.size >= 10 else 1.0
    unusable = days < 2
    ratio = np.exp(current.log_size() - expected)
    return np.where(unusable, np.nan, ratio), np.where(unusable, np.nan, z / spread)


def nan_median(values: np.ndarray) -> np.ndarray:
    """The median over axis 0 ignoring NaN (NaN where a column has none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: NaN, as meant
        return np.nanmedian(values, axis=0)


def leave_one_out(past: np.ndarray, variance: np.ndarray, day: int) -> np.ndarray:
    """One previous day's hours against the median of the others (the yardstick's spread)."""
    others = np.delete(past, day, axis=0)
    count = np.sum(np.isfinite(others), axis=0)
    inflate = 1.0 + math.pi / (2.0 * np.maximum(count, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (past[day] - nan_median(others)) / np.sqrt(variance * inflate)
    return np.where(count >= 2, z, np.nan)


def normal_tail(z: float) -> float:
    """Two-sided normal p-value of a z-score."""
    return math.erfc(abs(z) / math.sqrt(2.0))
