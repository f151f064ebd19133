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
from tastebud.experiments.stats import InsufficientData, compare


class CumulativePoint(BaseModel):
    """The relative lift (always-valid interval) of users exposed by the end of ``day``."""

    metric: str
    variant: str
    day: int
    users: int
    relative: float | None
    low: float | None
    high: float | None


def _upto(sample: VariantSample, day: int) -> VariantSample | None:
    if sample.first_day is None:
        return None
    keep = np.asarray(sample.first_day) <= day

    def cut(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else np.asarray(values)[keep]

    return VariantSample(
        numerator=cut(sample.numerator),
        denominator=cut(sample.denominator),
        pre_numerator=cut(sample.pre_numerator),
        pre_denominator=cut(sample.pre_denominator),
        first_day=cut(sample.first_day),
    )


def cumulative(
    experiment: Experiment, data: ExperimentData, settings: ExperimentSettings
) -> list[CumulativePoint]:
    """Per goal and treatment, the lift among users exposed by each day's end, with the
    always-valid interval: reading a curve day by day is peeking."""
    points = []
    control_name = experiment.control.name
    for goal in experiment.goals:
        sample = data.metrics.get(goal)
        if sample is None or sample.spec.kind in ("quantile", "coverage"):
            continue
        control = sample.variants.get(control_name)
        if control is None or control.first_day is None or not control.users:
            continue
        last = int(np.max(control.first_day))
        for variant in experiment.variants[1:]:
            treatment = sample.variants.get(variant.name)
            if treatment is None:
                continue
            points += _curve(sample.spec, goal, variant.name, control, treatment, last, settings)
    return points


def _curve(
    spec: MetricSpec,
    metric: str,
    variant: str,
    control: VariantSample,
    treatment: VariantSample,
    last: int,
    settings: ExperimentSettings,
) -> list[CumulativePoint]:
    points = []
    for day in range(last + 1):
        a, b = _upto(control, day), _upto(treatment, day)
        if a is None or b is None:
            return points
        try:
            result = compare(spec, a, b, alpha=settings.alpha, sequential=True)
        except InsufficientData:
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
