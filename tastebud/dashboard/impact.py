"""The business-impact projection behind the dashboard's calculator: a measured relative lift
(with its interval) carried to a year of the product's use.

    yearly baseline = users x sessions per user per week x 52 x per-session outcome x value
    yearly effect   = yearly baseline x lift (and x each end of the lift's interval)

The per-session outcome is conversions per session (valued per conversion) or hours played
per session (valued per hour). ``assumptions`` says in words what the numbers take for granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WEEKS_PER_YEAR = 52
Outcome = Literal["conversion", "hours"]


@dataclass(frozen=True)
class ImpactInputs:
    lift: float  # relative, 0.03 is +3 %
    lift_low: float
    lift_high: float
    users: int
    sessions_per_user_week: float
    per_session: float  # conversions or hours played per session, before the change
    value: float  # per conversion or per hour played
    outcome: Outcome = "conversion"
    measured: str = ""  # where the lift comes from, in words (an experiment's analysis)

    def problems(self) -> list[str]:
        """Why these inputs cannot be projected (empty when they can)."""
        found = []
        if not self.lift_low <= self.lift <= self.lift_high:
            found.append("the lift must lie within its interval (low <= lift <= high)")
        if self.lift_low <= -1.0:
            found.append("a relative lift cannot be -100 % or less")
        for name in ("users", "sessions_per_user_week", "per_session", "value"):
            if getattr(self, name) < 0:
                found.append(f"{name.replace('_', ' ')} cannot be negative")
        return found


@dataclass(frozen=True)
class Projection:
    baseline: float  # value per year without the change
    effect: float
    effect_low: float
    effect_high: float
    outcomes_baseline: float  # conversions or hours per year
    outcomes_effect: float


def project(inputs: ImpactInputs) -> Projection:
    problems = inputs.problems()
    if problems:
        raise ValueError("; ".join(problems))
    outcomes = inputs.users * inputs.sessions_per_user_week * WEEKS_PER_YEAR * inputs.per_session
    baseline = outcomes * inputs.value
    return Projection(
        baseline=baseline,
        effect=baseline * inputs.lift,
        effect_low=baseline * inputs.lift_low,
        effect_high=baseline * inputs.lift_high,
        outcomes_baseline=outcomes,
        outcomes_effect=outcomes * inputs.lift,
    )


def assumptions(inputs: ImpactInputs) -> list[str]:
    unit = "conversion" if inputs.outcome == "conversion" else "hour played"
    origin = [inputs.measured] if inputs.measured else ["The lift and its interval are typed in."]
    return [
        *origin,
        f"The measured lift ({inputs.lift:+.2%}) holds for a whole year and for every user: "
        "no novelty effect that fades, no change in who uses the product.",
        f"{inputs.users:,} users each have {inputs.sessions_per_user_week:g} sessions a week, "
        f"{WEEKS_PER_YEAR} weeks a year, the same all year.",
        f"Without the change a session brings {inputs.per_session:g} "
        f"{unit}{'s' if inputs.per_session != 1 else ''}, each worth {inputs.value:,.2f}.",
        "The change is rolled out to everyone (the experiment's treatment becomes the product).",
        f"The interval ({inputs.lift_low:+.2%} to {inputs.lift_high:+.2%}) is the experiment's "
        "uncertainty only: the inputs above are taken as exact, and effects on other metrics "
        "(cannibalisation, costs of serving) are not counted.",
    ]
