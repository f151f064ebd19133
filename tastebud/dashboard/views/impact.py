"""The business-impact calculator: a lift with its interval, taken from an experiment's
analysis (a metric of one of its variants) or typed in by hand, and a few inputs give the
projected yearly effect with an interval, and the assumptions behind it in words
(``tastebud.dashboard.impact``)."""

from __future__ import annotations

import streamlit as st

from tastebud.dashboard.experiments import MeasuredLift, experiment_rows, measured_lifts
from tastebud.dashboard.impact import ImpactInputs, assumptions, project
from tastebud.dashboard.source import DataSource
from tastebud.dashboard.views.common import attempt
from tastebud.dashboard.views.experiments import read_analysis

ORIGINS = {"experiment": "an experiment", "typed": "typed in"}


def _from_experiment(source: DataSource) -> MeasuredLift | None:
    """The lift of a metric the person picks from an experiment's analysis, or None (after
    saying why) when there is none to pick: then the lift is typed in."""
    listing = attempt(source.experiments, "the experiments")
    if listing is None:
        return None
    keys = [row["key"] for row in experiment_rows(listing) if row["status"] != "draft"]
    if not keys:
        st.info("No experiment has run yet: type the lift in below.")
        return None
    key = st.selectbox("Experiment", keys, key="impact-experiment")
    analysis = read_analysis(source, key)
    if analysis is None:
        return None
    lifts = measured_lifts(analysis)
    if not lifts:
        st.info(f"No metric of {key} has a relative lift with an interval yet: type one in.")
        return None
    chosen = st.selectbox(
        "Metric and variant", range(len(lifts)), format_func=lambda n: lifts[n].label,
        key="impact-metric",
    )  # fmt: skip
    return lifts[chosen]


def _lift(source: DataSource) -> tuple[float, float, float, str]:
    """(lift, low, high) as fractions, and where they come from in words."""
    st.subheader("The measured lift")
    origin = st.radio(
        "The lift comes from", list(ORIGINS), format_func=ORIGINS.get, horizontal=True,
        key="lift-from",
    )  # fmt: skip
    measured = _from_experiment(source) if origin == "experiment" else None
    if measured is not None:
        left, middle, right = st.columns(3)
        left.metric("Measured lift", f"{measured.lift:+.2%}")
        middle.metric("Interval low", f"{measured.low:+.2%}")
        right.metric("Interval high", f"{measured.high:+.2%}")
        return measured.lift, measured.low, measured.high, measured.describe()
    left, middle, right = st.columns(3)
    lift = left.number_input("Lift (%)", value=3.0, step=0.1, format="%.2f", key="lift")
    low = middle.number_input("Interval low (%)", value=1.0, step=0.1, format="%.2f", key="low")
    high = right.number_input("Interval high (%)", value=5.0, step=0.1, format="%.2f", key="high")
    return lift / 100, low / 100, high / 100, ""


def _inputs(source: DataSource) -> ImpactInputs:
    lift, low, high, measured = _lift(source)
    st.subheader("The product")
    outcome = st.radio(
        "The lift is on",
        ["conversion", "hours"],
        horizontal=True,
        key="outcome",
        format_func={"conversion": "conversions", "hours": "hours played"}.get,
    )
    first, second, third, fourth = st.columns(4)
    users = first.number_input("Users", min_value=0, value=100_000, step=1000, key="users")
    sessions = second.number_input(
        "Sessions per user per week", min_value=0.0, value=3.0, step=0.5, key="sessions"
    )
    per_session = third.number_input(
        "Conversions per session" if outcome == "conversion" else "Hours played per session",
        min_value=0.0,
        value=0.05 if outcome == "conversion" else 0.5,
        step=0.01,
        key="rate",
    )
    value = fourth.number_input(
        "Value per conversion" if outcome == "conversion" else "Value per hour played",
        min_value=0.0,
        value=20.0 if outcome == "conversion" else 0.3,
        step=0.1,
        key="value",
    )
    return ImpactInputs(
        lift=lift, lift_low=low, lift_high=high, users=int(users),
        sessions_per_user_week=float(sessions), per_session=float(per_session),
        value=float(value), outcome=outcome, measured=measured,
    )  # fmt: skip


def render(source: DataSource) -> None:
    st.title("Business impact")
    st.caption(
        "Take an experiment's measured lift and its interval (or type one in) and say what "
        "the product looks like: the yearly effect of rolling the change out, with its interval."
    )
    inputs = _inputs(source)
    problems = inputs.problems()
    if problems:
        for problem in problems:
            st.error(f"Cannot project: {problem}.", icon=":material/error:")
        return
    result = project(inputs)
    st.subheader("Projected yearly effect")
    left, middle, right = st.columns(3)
    left.metric("Baseline value per year", f"{result.baseline:,.0f}")
    middle.metric("Effect per year", f"{result.effect:+,.0f}")
    right.metric("Interval", f"{result.effect_low:+,.0f} to {result.effect_high:+,.0f}")
    unit = "conversions" if inputs.outcome == "conversion" else "hours played"
    st.write(
        f"That is {result.outcomes_effect:+,.0f} {unit} a year on a baseline of "
        f"{result.outcomes_baseline:,.0f}."
    )
    if result.effect_low < 0 < result.effect_high:
        st.warning("The interval includes zero: the change may be worth nothing, or cost.")
    st.subheader("Assumptions")
    st.markdown("\n".join(f"- {line}" for line in assumptions(inputs)))
