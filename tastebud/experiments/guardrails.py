"""Guardrails judged on their own, so the scheduled ``guardrails`` job can run them every few
minutes without the whole analysis (``analysis.analyze`` reports the same results).

A guardrail (``definition.Guardrail``) breaches for a variant when, with at least
``min_users`` users in both the variant and control:

- ``threshold``: the variant's value is past it (above for a lower-is-better metric, below
  for a higher-is-better one), on the point estimate;
- ``max_relative_change``: the variant is worse than control by more than that share, on the
  point estimate, *and* the test says it is worse at all (the always-valid interval when
  ``sequential``, else the fixed-n one, lies wholly on the bad side of zero). The point
  estimate alone would pause A/A variants on noise when few users are in;
- ``sequential``: the always-valid interval (``stats`` module docstring) lies wholly on the
  bad side of zero. Always-valid, so running this every five minutes does not inflate the
  error rate.
"""

from __future__ import annotations

from pydantic import BaseModel

from tastebud.config import ExperimentSettings, MetricSpec
from tastebud.experiments.definition import Experiment, Guardrail
from tastebud.experiments.samples import ExperimentData, VariantSample
from tastebud.experiments.stats import Comparison, compare


class GuardrailResult(BaseModel):
    """One guardrail for one variant. ``judged`` is False when there was no data or too few
    users to say; ``reason`` says why in one line either way."""

    experiment: str
    variant: str
    metric: str
    judged: bool
    breached: bool
    reason: str
    users: int = 0
    value: float | None = None
    control_value: float | None = None
    relative_change: float | None = None
    low: float | None = None
    high: float | None = None


def evaluate_guardrails(
    experiment: Experiment, data: ExperimentData, settings: ExperimentSettings
) -> list[GuardrailResult]:
    """Every guardrail for every variant but control, breached or not, with why."""
    results = []
    for guardrail in experiment.guardrails:
        for variant in experiment.variants[1:]:
            results.append(_judge(experiment, guardrail, variant.name, data, settings))
    return results


def _judge(
    experiment: Experiment,
    guardrail: Guardrail,
    variant: str,
    data: ExperimentData,
    settings: ExperimentSettings,
) -> GuardrailResult:
    control = experiment.control.name
    base = {"experiment": experiment.key, "variant": variant, "metric": guardrail.metric}
    sample = data.metrics.get(guardrail.metric)
    if sample is None or control not in sample.variants or variant not in sample.variants:
        return GuardrailResult(
            **base, judged=False, breached=False, reason=f"no data for {guardrail.metric}"
        )
    users = min(
        _users(sample.variants[name], data.exposed_users.get(name, 0))
        for name in (control, variant)
    )
    if users < guardrail.min_users:
        reason = f"{users} users so far; judged from {guardrail.min_users} per variant"
        return GuardrailResult(**base, judged=False, breached=False, reason=reason, users=users)
    try:
        result = compare(
            sample.spec,
            sample.variants[control],
            sample.variants[variant],
            alpha=settings.alpha,
            sequential=guardrail.sequential,
        )
    except ValueError as error:  # InsufficientData, or arrays that do not line up
        return GuardrailResult(**base, judged=False, breached=False, reason=str(error))
    reasons = breaches(guardrail, sample.spec, result)
    return GuardrailResult(
        **base,
        judged=True,
        breached=bool(reasons),
        reason="; ".join(reasons) if reasons else "within limits",
        users=users,
        value=result.treatment,
        control_value=result.control,
        relative_change=result.relative.estimate,
        low=result.relative.low,
        high=result.relative.high,
    )


def _users(sample: VariantSample, exposed: int) -> int:
    """Users in the sample; a quantile metric may carry only its values (one per list), a
    coverage metric only its counts, and then the variant's exposed users count."""
    if sample.users:
        return sample.users
    return len(sample.values) if sample.values is not None else exposed


def breaches(guardrail: Guardrail, spec: MetricSpec, result: Comparison) -> list[str]:
    """Why ``result`` breaches ``guardrail`` (empty when it does not)."""
    sign = 1.0 if spec.higher_is_better else -1.0  # +: the variant is better
    reasons = []
    if guardrail.threshold is not None and result.treatment is not None:
        past = sign * (result.treatment - guardrail.threshold) < 0
        if past:
            side = "below" if spec.higher_is_better else "above"
            reasons.append(
                f"{result.treatment:.4g} is {side} the threshold {guardrail.threshold:g}"
            )
    low, high = result.absolute.low, result.absolute.high
    worse = low is not None and high is not None and (high < 0 if sign > 0 else low > 0)
    limit = guardrail.max_relative_change
    relative = result.relative.estimate
    if limit is not None and relative is not None and worse and sign * relative < -limit:
        reasons.append(f"{relative:+.1%} against control, past the {limit:.0%} allowed")
    if guardrail.sequential and worse and result.sequential:
        interval = f"[{low:+.4g}, {high:+.4g}]"
        reasons.append(f"always-valid interval {interval} says worse than control")
    return reasons
