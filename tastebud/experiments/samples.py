"""What the analysis reads: per variant, one value per user of each metric (and of its
pre-period, CUPED's covariate). ``tastebud.experiments.metrics`` fills these from events and
exposures; the simulator's fast path fills them from its user model; the statistics
(``tastebud.experiments.stats``) never see where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tastebud.config import MetricSpec


@dataclass
class VariantSample:
    """One metric's values in one variant, index-aligned per user.

    ``numerator`` (and ``denominator`` for a ratio metric) hold each user's totals;
    ``pre_numerator``/``pre_denominator`` the same user's totals in the pre-period (None
    when there is none); ``first_day`` the day (0 = the experiment's first) the user was
    first exposed, for cumulative lift. A ``quantile`` metric's ``values`` are the
    per-exposure values (latency); a ``coverage`` metric's ``distinct`` and ``catalog``
    count items served and items active."""

    numerator: np.ndarray
    denominator: np.ndarray | None = None
    pre_numerator: np.ndarray | None = None
    pre_denominator: np.ndarray | None = None
    first_day: np.ndarray | None = None
    values: np.ndarray | None = None
    distinct: int | None = None
    catalog: int | None = None

    @property
    def users(self) -> int:
        return len(self.numerator)


@dataclass
class MetricSample:
    name: str
    spec: MetricSpec
    variants: dict[str, VariantSample]


@dataclass
class ExperimentData:
    """Everything the analysis of one experiment needs. ``exposed_users`` counts the users
    counted in each variant (the sample-ratio test's observed counts); ``weights`` are the
    variants' designed shares; the first variant is control. ``multiple_variant_users``
    counts users whose exposures name more than one variant: an assignment or logging bug,
    so they are left out of every count and metric and reported instead."""

    key: str
    variants: list[str]
    weights: list[float]
    exposed_users: dict[str, int]
    metrics: dict[str, MetricSample] = field(default_factory=dict)
    days: int = 0
    multiple_variant_users: int = 0
