"""The business-impact calculator: a lift with its interval (typed in by hand until the
experiments report feeds it) and a few inputs give the projected yearly effect with an
interval, and the assumptions behind it in words (``tastebud.dashboard.impact``)."""

from __future__ import annotations

import streamlit as st

from tastebud.dashboard.impact import ImpactInputs, assumptions, project


def _inputs() -> ImpactInputs:
    st.subheader("The measured lift")
    left, middle, right = st.columns(3)
    lift = left.number_input("Lift (%)", value=3.0, step=0.1, format="%.2f", key="lift")
    low = middle.number_input("Interval low (%)", value=1.0, step=0.1, format="%.2f", key="low")
    high = right.number_input("Interval high (%)", value=5.0, step=0.1, format="%.2f", key="high")
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
        lift=lift / 100, lift_low=low / 100, lift_high=high / 100, users=int(users),
        sessions_per_user_week=float(sessions), per_session=float(per_session),
        value=float(value), outcome=outcome,
    )  # fmt: skip


def render() -> None:
    st.title("Business impact")
    st.caption(
        "Enter an experiment's measured lift and its interval (by hand for now) and what the "
        "product looks like: the yearly effect of rolling the change out, with its interval."
    )
    inputs = _inputs()
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
