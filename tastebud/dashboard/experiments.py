"""What the experiments page and the impact calculator read from an experiment's analysis
(``GET /v1/experiments/{key}/analysis``, the ``Analysis`` model): rows for the tables and
charts, and the measured lifts a projection can start from. Plain functions over the model,
so they are tested without Streamlit and the page only draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tastebud.experiments.analysis import Analysis, MetricResult
from tastebud.experiments.stats import Comparison

# The order the list shows: what is live first, what is over last.
STATUS_ORDER = {"running": 0, "paused": 1, "draft": 2, "stopped": 3}


def shown(result: MetricResult) -> Comparison | None:
    """The comparison a person reads: the always-valid one where it was computed
    (guardrails, goals of a sequential experiment), else the fixed-horizon one (as the
    report's tables do)."""
    return result.sequential or result.comparison


def experiment_rows(listing: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per experiment, running first, then paused, draft and stopped."""
    rows = []
    for entry in listing["experiments"]:
        experiment = entry["experiment"]
        paused = experiment.get("paused_variants") or {}
        rows.append(
            {
                "key": experiment["key"],
                "status": experiment["status"],
                "variants": ", ".join(
                    f"{v['name']}{' (paused)' if v['name'] in paused else ''} {v['weight']:.0%}"
                    for v in experiment["variants"]
                ),
                "goals": ", ".join(experiment.get("goals") or []),
                "guardrails": ", ".join(g["metric"] for g in experiment.get("guardrails") or []),
                "updated": entry["updated_at"][:19].replace("T", " "),
            }
        )
    rows.sort(key=lambda row: (STATUS_ORDER.get(row["status"], 9), row["key"]))
    return rows


def lift_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """Each metric's relative lift (variant against control) with its interval, for the
    chart and the table; a metric that could not be compared has its note and no lift."""
    rows = []
    for result in analysis.results:
        comparison = shown(result)
        relative = comparison.relative if comparison else None
        rows.append(
            {
                "metric": result.metric,
                "variant": result.variant,
                "label": f"{result.metric} ({result.variant})",
                "role": result.role,
                "control": comparison.control if comparison else None,
                "treatment": comparison.treatment if comparison else None,
                "lift": relative.estimate if relative else None,
                "low": relative.low if relative else None,
                "high": relative.high if relative else None,
                "p": comparison.p_value if comparison else None,
                "holm p": result.adjusted_p,
                "method": (comparison.method if comparison else None) or "",
                "always valid": bool(comparison and comparison.sequential),
                "note": result.note or "",
            }
        )
    return rows


def guardrail_rows(analysis: Analysis) -> list[dict[str, Any]]:
    return [
        {
            "metric": g.metric,
            "variant": g.variant,
            "status": "breached" if g.breached else ("ok" if g.judged else "not judged yet"),
            "change": g.relative_change,
            "users": g.users,
            "why": g.reason,
        }
        for g in analysis.guardrails
    ]


def cumulative_rows(analysis: Analysis) -> list[dict[str, Any]]:
    return [
        {
            "day": point.day,
            "series": f"{point.metric} ({point.variant})",
            "lift": point.relative,
            "low": point.low,
            "high": point.high,
            "users": point.users,
        }
        for point in analysis.cumulative
        if point.relative is not None
    ]


@dataclass(frozen=True)
class MeasuredLift:
    """One metric's relative lift for one variant, with its interval: what the impact
    calculator projects from."""

    experiment: str
    metric: str
    variant: str
    control: str
    lift: float
    low: float
    high: float
    confidence: float  # 0.95 for alpha 0.05
    method: str
    always_valid: bool
    users: int  # the fewer of the variant's and control's

    @property
    def label(self) -> str:
        return f"{self.metric}: {self.variant} vs {self.control} ({self.lift:+.2%})"

    def describe(self) -> str:
        kind = "always-valid" if self.always_valid else "fixed-horizon"
        return (
            f"The lift is experiment {self.experiment}'s measured relative lift on "
            f"{self.metric}, {self.variant} against {self.control} ({self.users:,} users in "
            f"the smaller arm; {self.method}), with its {kind} {self.confidence:.0%} interval."
        )


def measured_lifts(analysis: Analysis) -> list[MeasuredLift]:
    """Every comparison with a relative lift and both ends of its interval: goals first."""
    lifts = []
    for result in analysis.results:
        comparison = shown(result)
        if comparison is None:
            continue
        relative = comparison.relative
        if relative.estimate is None or relative.low is None or relative.high is None:
            continue
        lifts.append(
            MeasuredLift(
                experiment=analysis.experiment, metric=result.metric, variant=result.variant,
                control=analysis.control, lift=relative.estimate, low=relative.low,
                high=relative.high, confidence=1 - comparison.alpha, method=comparison.method,
                always_valid=comparison.sequential,
                users=min(comparison.n_control, comparison.n_treatment),
            )
        )  # fmt: skip
    return lifts
