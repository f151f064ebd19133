"""The analysis of one experiment: every metric compared for every variant against control
(``stats.compare``), the sample-ratio check, Holm over the goals, always-valid intervals
where peeking happens, the guardrails, the lift over time, warnings and a decision line.

The decision never says "ship" when the sample ratio is off, a guardrail breached (or paused
the variant), or the users per variant are fewer than the plan needs (``min_sample_size``,
or the power calculation at ``minimum_effect`` on control's own spread, whichever is
larger). Goals are judged on Holm-adjusted p-values over every goal and treatment variant
(the family the decision rests on); with ``experiment.sequential`` on the always-valid ones.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from tastebud.config import ExperimentSettings
from tastebud.experiments.cumulative import CumulativePoint, cumulative
from tastebud.experiments.definition import Experiment
from tastebud.experiments.guardrails import GuardrailResult, evaluate_guardrails
from tastebud.experiments.samples import ExperimentData, MetricSample
from tastebud.experiments.stats import (
    Comparison,
    SrmResult,
    compare,
    holm,
    sample_size_for,
    srm,
)

__all__ = ["Analysis", "AnalysisError", "GuardrailResult", "analyze", "evaluate_guardrails"]

Role = Literal["goal", "guardrail", "secondary"]
Action = Literal["ship", "keep running", "stop"]


class AnalysisError(ValueError):
    """The data cannot be analysed as asked (no exposures, variants that do not match)."""


class MetricResult(BaseModel):
    """One metric, one treatment variant against control. ``comparison`` is the fixed-n
    one (CUPED when a pre-period is there); ``sequential`` the always-valid one, for
    guardrails and for goals of a sequential experiment; ``note`` says why either is None."""

    metric: str
    variant: str
    role: Role
    kind: str
    higher_is_better: bool
    comparison: Comparison | None = None
    sequential: Comparison | None = None
    adjusted_p: float | None = None
    note: str | None = None

    def decisive(self, sequential: bool) -> Comparison | None:
        return self.sequential if sequential and self.sequential else self.comparison


class Decision(BaseModel):
    action: Action
    variant: str | None = None
    line: str
    reason: str


class Analysis(BaseModel):
    experiment: str
    control: str
    variants: list[str]
    alpha: float
    days: int
    exposed_users: dict[str, int]
    srm: SrmResult
    trustworthy: bool
    required_users: int | None
    results: list[MetricResult]
    guardrails: list[GuardrailResult]
    cumulative: list[CumulativePoint]
    warnings: list[str]
    decision: Decision

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def analyze(experiment: Experiment, data: ExperimentData, settings: ExperimentSettings) -> Analysis:
    """The whole analysis. Raises ``AnalysisError`` when there is nothing to analyse."""
    names = [variant.name for variant in experiment.variants]
    _check(experiment, data, names)
    weights = dict(zip(data.variants, data.weights, strict=True))
    try:
        check = srm(
            [data.exposed_users.get(name, 0) for name in names],
            [
                weights.get(name, variant.weight)
                for name, variant in zip(names, experiment.variants, strict=True)
            ],
            threshold=settings.srm_p,
        )
    except ValueError as error:
        raise AnalysisError(f"sample ratio test: {error}") from None
    warnings: list[str] = []
    results = _results(experiment, data, settings, warnings)
    guardrails = evaluate_guardrails(experiment, data, settings)
    required = _required_users(experiment, data, settings)
    users = min(data.exposed_users.get(name, 0) for name in names)
    warnings += _warnings(experiment, settings, check, results, guardrails, required, users)
    decision = decide(experiment, settings.alpha, check, results, guardrails, required, users)
    return Analysis(
        experiment=experiment.key,
        control=names[0],
        variants=names,
        alpha=settings.alpha,
        days=data.days,
        exposed_users={name: data.exposed_users.get(name, 0) for name in names},
        srm=check,
        trustworthy=not check.flagged,
        required_users=required,
        results=results,
        guardrails=guardrails,
        cumulative=cumulative(experiment, data, settings),
        warnings=warnings,
        decision=decision,
    )


def _check(experiment: Experiment, data: ExperimentData, names: list[str]) -> None:
    if set(data.variants) != set(names) or len(data.weights) != len(data.variants):
        raise AnalysisError(
            f"the data's variants {data.variants} do not match experiment "
            f"{experiment.key!r}'s {names}"
        )
    if sum(data.exposed_users.get(name, 0) for name in names) == 0:
        raise AnalysisError(f"experiment {experiment.key!r} has no exposures yet")


def _role(experiment: Experiment, metric: str) -> Role:
    if metric in experiment.goals:
        return "goal"
    if any(guardrail.metric == metric for guardrail in experiment.guardrails):
        return "guardrail"
    return "secondary"


def _results(
    experiment: Experiment,
    data: ExperimentData,
    settings: ExperimentSettings,
    warnings: list[str],
) -> list[MetricResult]:
    """Goals first, then guardrails, then every other metric the data holds."""
    named = [*experiment.goals, *(g.metric for g in experiment.guardrails), *data.metrics]
    order = list(dict.fromkeys(named))
    results = []
    for metric in order:
        role = _role(experiment, metric)
        sample = data.metrics.get(metric)
        if sample is None:
            warnings.append(f"no data for {role} metric {metric!r}")
            continue
        for variant in experiment.variants[1:]:
            result = _one(experiment, sample, variant.name, role, settings)
            if result.note:
                warnings.append(f"{metric} ({variant.name}): {result.note}")
            results.append(result)
    goals = [
        r
        for r in results
        if r.role == "goal"
        and (chosen := r.decisive(experiment.sequential))
        and chosen.p_value is not None
    ]
    adjusted = holm([r.decisive(experiment.sequential).p_value for r in goals])
    for result, p_value in zip(goals, adjusted, strict=True):
        result.adjusted_p = p_value
    return results


def _one(
    experiment: Experiment,
    sample: MetricSample,
    variant: str,
    role: Role,
    settings: ExperimentSettings,
) -> MetricResult:
    spec = sample.spec
    result = MetricResult(
        metric=sample.name,
        variant=variant,
        role=role,
        kind=spec.kind,
        higher_is_better=spec.higher_is_better,
    )
    control = sample.variants.get(experiment.control.name)
    treatment = sample.variants.get(variant)
    if control is None or treatment is None:
        result.note = "no data for this variant or control"
        return result
    try:
        result.comparison = compare(spec, control, treatment, alpha=settings.alpha)
        if role == "guardrail" or (role == "goal" and experiment.sequential):
            result.sequential = compare(
                spec, control, treatment, alpha=settings.alpha, sequential=True
            )
    except ValueError as error:  # InsufficientData, or arrays that do not line up
        result.note = str(error)
    return result


def _required_users(
    experiment: Experiment, data: ExperimentData, settings: ExperimentSettings
) -> int | None:
    """Users per variant the plan needs: the larger of ``min_sample_size`` and the power
    calculation (power 0.8 at alpha) for ``minimum_effect`` on each goal."""
    sizes = [experiment.min_sample_size] if experiment.min_sample_size else []
    if experiment.minimum_effect:
        for goal in experiment.goals:
            sample = data.metrics.get(goal)
            control = sample.variants.get(experiment.control.name) if sample else None
            if sample and control:
                size = sample_size_for(
                    sample.spec, control, experiment.minimum_effect, alpha=settings.alpha
                )
                sizes += [size] if size else []
    return max(sizes) if sizes else None


def _warnings(
    experiment: Experiment,
    settings: ExperimentSettings,
    check: SrmResult,
    results: list[MetricResult],
    guardrails: list[GuardrailResult],
    required: int | None,
    users: int,
) -> list[str]:
    warnings = []
    if check.flagged:
        counts = ", ".join(
            f"{n:,} vs {e:,.0f}" for n, e in zip(check.observed, check.expected, strict=True)
        )
        warnings.append(
            f"sample ratio mismatch (p = {check.p_value:.2g} < {check.threshold:g}; observed "
            f"vs expected users: {counts}): assignment or exposure logging is broken, the "
            "results are not trustworthy"
        )
    for result in results:
        lift = result.comparison.relative.estimate if result.comparison else None
        if lift is not None and abs(lift) > settings.large_lift:
            warnings.append(
                f"suspiciously large lift on {result.metric} ({result.variant}): {lift:+.1%} "
                f"(beyond {settings.large_lift:.0%}); check logging and assignment first"
            )
    if required is not None and users < required:
        warnings.append(f"too few users: {users:,} per variant of the {required:,} needed")
    elif required is None:
        warnings.append("no planned size (min_sample_size or minimum_effect): cannot call it flat")
    for guardrail in guardrails:
        if guardrail.breached:
            warnings.append(
                f"guardrail {guardrail.metric} breached by {guardrail.variant}: {guardrail.reason}"
            )
    for variant, why in experiment.paused_variants.items():
        warnings.append(f"variant {variant} is paused ({why}): its users get control")
    return warnings


def _verdicts(
    experiment: Experiment,
    alpha: float,
    results: list[MetricResult],
    guardrails: list[GuardrailResult],
) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Per treatment variant: goals significantly better, goals significantly worse, and
    blockers (breached guardrails, a pause), each as short phrases."""
    verdicts = {}
    for variant in experiment.variants[1:]:
        better, worse, blocked = [], [], []
        for result in results:
            chosen = result.decisive(experiment.sequential)
            if result.variant != variant.name or result.role != "goal" or chosen is None:
                continue
            if result.adjusted_p is None or result.adjusted_p >= alpha:
                continue
            good = (chosen.absolute.estimate > 0) == result.higher_is_better
            phrase = _phrase(result.metric, chosen, result.adjusted_p)
            (better if good else worse).append(phrase)
        blocked += [
            f"guardrail {g.metric} breached ({g.reason})"
            for g in guardrails
            if g.variant == variant.name and g.breached
        ]
        if variant.name in experiment.paused_variants:
            blocked.append(f"paused: {experiment.paused_variants[variant.name]}")
        verdicts[variant.name] = (better, worse, blocked)
    return verdicts


def _goal_lift(experiment: Experiment, results: list[MetricResult], variant: str) -> float:
    """The variant's lift on the first goal, signed so that larger is better."""
    for result in results:
        chosen = result.decisive(experiment.sequential)
        if result.variant == variant and result.role == "goal" and chosen is not None:
            lift = chosen.relative.estimate or 0.0
            return lift if result.higher_is_better else -lift
    return 0.0


def _phrase(metric: str, comparison: Comparison, p_value: float) -> str:
    lift = comparison.relative.estimate
    size = f"{lift:+.1%}" if lift is not None else f"{comparison.absolute.estimate:+.4g}"
    return f"{metric} {size} (p = {p_value:.2g})"


def decide(
    experiment: Experiment,
    alpha: float,
    check: SrmResult,
    results: list[MetricResult],
    guardrails: list[GuardrailResult],
    required: int | None,
    users: int,
) -> Decision:
    """Ship, keep running or stop, with a one-line reason (rules: module docstring)."""
    if check.flagged:
        reason = f"sample ratio mismatch (p = {check.p_value:.2g}); fix assignment or logging"
        return Decision(action="stop", line="stop: results untrustworthy", reason=reason)
    if not any(r.role == "goal" and r.comparison for r in results):
        return Decision(action="keep running", line="keep running", reason="no goal data yet")
    verdicts = _verdicts(experiment, alpha, results, guardrails)
    enough = required is None or users >= required
    winners = [v for v, (better, worse, blocked) in verdicts.items() if better and not worse]
    clean = [v for v in winners if not verdicts[v][2]]
    if clean and enough:
        best = max(clean, key=lambda v: _goal_lift(experiment, results, v))
        return Decision(
            action="ship",
            variant=best,
            line=f"ship {best}",
            reason="better on " + ", ".join(verdicts[best][0]),
        )
    if clean:
        reason = (
            f"{clean[0]} looks better ({verdicts[clean[0]][0][0]}) but has {users:,} of the "
            f"{required:,} users per variant needed"
        )
        return Decision(action="keep running", variant=clean[0], line="keep running", reason=reason)
    losers = {
        v: (worse, blocked) for v, (_, worse, blocked) in verdicts.items() if worse or blocked
    }
    if losers and len(losers) == len(verdicts):
        line = ", ".join(
            f"{v} is worse" if worse else f"{v} breached a guardrail"
            for v, (worse, _) in losers.items()
        )
        why = "; ".join(
            f"{v}: {', '.join(worse + blocked)}" for v, (worse, blocked) in losers.items()
        )
        return Decision(action="stop", line=f"stop: {line}", reason=why)
    if enough and required is not None:
        flat = [v for v in verdicts if v not in losers]
        reason = (
            f"{', '.join(flat)} no different from control on the goals "
            f"at {users:,} users per variant"
        )
        return Decision(action="stop", line="stop: no effect", reason=reason)
    if required is None:
        reason = "no significant difference; no planned size says when to stop"
    else:
        reason = f"no significant difference yet; {users:,} of {required:,} users per variant"
    return Decision(action="keep running", line="keep running", reason=reason)
