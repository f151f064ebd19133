"""The lift over time: per goal and treatment variant, the relative lift among the users
first exposed by the end of each day (``VariantSample.first_day``), with the always-valid
interval, since a curve read day by day is peeking. Users' values are their totals over the
whole experiment, so day d's point is the cohort that entered by then, not day d's traffic.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from tastebud.config import ExperimentSettings, MetricSpec
from tastebud.experiments.definition import Experiment
from tastebud.experiments.samples import ExperimentData, VariantSample
from tastebud.experiments.stats import compare


class CumulativePoint(BaseModel):
    """The relative lift (always-valid interval) of users exposed by the end of ``day``."""

    metric: str
    variant: str
    day: int
    users: int
    relative: float | None
    low: float | None
    high: float | None


FIELDS = ("numerator", "denominator", "pre_numerator", "pre_denominator")


class _ByDay:
    """One arm's users ordered by first exposure day (once), so each day's cohort is a
    prefix: slices are views, where a mask per day would copy every array every day."""

    def __init__(self, sample: VariantSample) -> None:
        days = np.asarray(sample.first_day)
        order = np.argsort(days, kind="stable")
        self.days = days[order]
        self.arrays = {
            name: np.asarray(values)[order]
            for name in FIELDS
            if (values := getattr(sample, name)) is not None
        }

    def upto(self, day: int) -> VariantSample:
        users = int(np.searchsorted(self.days, day, side="right"))
        return VariantSample(**{name: values[:users] for name, values in self.arrays.items()})


def _by_day(sample: VariantSample | None) -> _ByDay | None:
    """None when the sample has no exposure days or arrays that do not line up with them
    (the comparison itself reports the latter)."""
    if sample is None or sample.first_day is None or not sample.users:
        return None
    size = len(sample.first_day)
    if any(len(v) != size for n in FIELDS if (v := getattr(sample, n)) is not None):
        return None
    return _ByDay(sample)


def cumulative(
    experiment: Experiment, data: ExperimentData, settings: ExperimentSettings
) -> list[CumulativePoint]:
    """Per goal and treatment, the lift among users exposed by each day's end, with the
    always-valid interval: reading a curve day by day is peeking."""
    points = []
    for goal in experiment.goals:
        sample = data.metrics.get(goal)
        if sample is None or sample.spec.kind in ("quantile", "coverage"):
            continue
        control = _by_day(sample.variants.get(experiment.control.name))
        if control is None:
            continue
        last = int(control.days[-1])
        for variant in experiment.variants[1:]:
            treatment = _by_day(sample.variants.get(variant.name))
            if treatment is not None:
                points += _curve(
                    sample.spec, goal, variant.name, control, treatment, last, settings
                )
    return points


def _curve(
    spec: MetricSpec,
    metric: str,
    variant: str,
    control: _ByDay,
    treatment: _ByDay,
    last: int,
    settings: ExperimentSettings,
) -> list[CumulativePoint]:
    points = []
    for day in range(last + 1):
        a, b = control.upto(day), treatment.upto(day)
        try:
            result = compare(spec, a, b, alpha=settings.alpha, sequential=True)
        except ValueError:  # InsufficientData: too few users by that day
            continue
        lift = result.relative
        points.append(
            CumulativePoint(
                metric=metric,
                variant=variant,
                day=day,
                users=a.users + b.users,
                relative=lift.estimate,
                low=lift.low,
                high=lift.high,
            )
        )
    return points
