"""Experiments: every experiment (running first) and, for the one picked, its analysis from
the server (``GET /v1/experiments/{key}/analysis``): the decision line, the sample-ratio
check, each metric's relative lift with its interval (a chart and a table), the guardrails,
the goals' cumulative lift by exposure day and the warnings. Pausing and resuming (the
experiment or one variant) take an admin key, a confirmation and a note; resuming also the
reviewer's name, as the API requires."""

from __future__ import annotations

from typing import Any

import altair as alt
import streamlit as st
from pydantic import ValidationError

from tastebud.dashboard.experiments import (
    cumulative_rows,
    experiment_rows,
    guardrail_rows,
    lift_rows,
)
from tastebud.dashboard.source import DashboardError, DataSource
from tastebud.dashboard.views.common import attempt
from tastebud.experiments.analysis import Analysis

# As the report's charts (tastebud.experiments.report), without importing matplotlib here.
ROLE_COLOURS = {"goal": "#1f77b4", "guardrail": "#d62728", "secondary": "#7f7f7f"}
DECISION_ICONS = {"ship": ":material/rocket_launch:", "stop": ":material/block:"}


def read_analysis(source: DataSource, key: str) -> Analysis | None:
    """The experiment's analysis, or None after saying on the page why there is none: no
    exposures yet (409), a server that does not analyse, or any other failure."""
    try:
        return Analysis.model_validate(source.analysis(key))
    except DashboardError as error:
        if error.status == 409:
            st.info(
                f"No analysis for {key} yet: {error}. Lists served while it runs are its "
                "exposures; the analysis starts with the first.",
                icon=":material/hourglass_empty:",
            )
        elif error.status == 404 and error.code != "unknown_experiment":
            st.info(f"This server does not analyse experiments ({error}).")
        else:
            st.error(f"Could not read the analysis of {key}: {error}", icon=":material/error:")
    except ValidationError as error:
        st.error(f"The server's analysis of {key} is not one this dashboard reads: {error}")
    return None


def _decision(analysis: Analysis) -> None:
    decision = analysis.decision
    text = f"**Decision: {decision.line}** — {decision.reason}"
    if decision.action == "ship":
        st.success(text, icon=DECISION_ICONS["ship"])
    elif decision.action == "stop":  # a result, not a failure of the page
        st.warning(text, icon=DECISION_ICONS["stop"])
    else:
        st.info(text, icon=":material/hourglass_top:")
    srm = analysis.srm
    columns = st.columns(len(analysis.variants) + 2)
    for column, name in zip(columns, analysis.variants, strict=False):
        column.metric(f"Users in {name}", f"{analysis.exposed_users.get(name, 0):,}")
    columns[-2].metric("Days", analysis.days)
    if analysis.required_users:
        columns[-1].metric("Users needed per variant", f"{analysis.required_users:,}")
    observed = ", ".join(f"{n:,}" for n in srm.observed)
    expected = ", ".join(f"{e:,.0f}" for e in srm.expected)
    if srm.flagged:
        st.error(
            f"Sample ratio mismatch: p = {srm.p_value:.2g} < {srm.threshold:g} (observed "
            f"{observed}, expected {expected}). The results are not trustworthy.",
            icon=":material/warning:",
        )
    else:
        st.caption(
            f"Sample ratio OK: p = {srm.p_value:.2g} (observed {observed}, expected {expected})."
        )


def _lift_chart(rows: list[dict[str, Any]]) -> None:
    drawn = [row for row in rows if row["lift"] is not None]
    if not drawn:
        st.info("No metric could be compared yet.")
        return
    roles = alt.Scale(domain=list(ROLE_COLOURS), range=list(ROLE_COLOURS.values()))
    base = alt.Chart(alt.Data(values=drawn)).encode(
        y=alt.Y("label:N", title=None, sort=None, axis=alt.Axis(labelLimit=260)),
        color=alt.Color("role:N", title="role", scale=roles),
        tooltip=["metric:N", "variant:N", "lift:Q", "low:Q", "high:Q", "p:Q", "method:N"],
    )
    bars = base.mark_rule(strokeWidth=3).encode(
        x=alt.X("low:Q", title="relative lift", axis=alt.Axis(format="%")), x2="high:Q"
    )
    points = base.mark_point(filled=True, size=80).encode(x="lift:Q")
    zero = alt.Chart(alt.Data(values=[{"x": 0}])).mark_rule(strokeDash=[4, 4], color="gray")
    zero = zero.encode(x="x:Q")
    height = 60 + 32 * len(drawn)  # a readable row per metric and variant
    st.altair_chart(
        (bars + points + zero).properties(height=height), width="stretch", height=height
    )


def _cumulative_chart(rows: list[dict[str, Any]]) -> None:
    if not rows:
        st.caption("No cumulative lift yet: it needs a goal with data on at least one day.")
        return
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("day:O", title="exposure day"), color=alt.Color("series:N", title=None)
    )
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("low:Q", title="cumulative relative lift", axis=alt.Axis(format="%")),
        y2="high:Q",
    )
    line = base.mark_line(point=True).encode(
        y="lift:Q", tooltip=["series:N", "day:O", "lift:Q", "low:Q", "high:Q", "users:Q"]
    )
    st.altair_chart(band + line, width="stretch")


def show_analysis(analysis: Analysis) -> None:
    _decision(analysis)
    for warning in analysis.warnings:
        st.warning(warning, icon=":material/warning:")
    st.subheader("Lift by metric")
    rows = lift_rows(analysis)
    _lift_chart(rows)
    st.dataframe(
        [{k: v for k, v in row.items() if k != "label"} for row in rows],
        hide_index=True,
        width="stretch",
        column_config={
            name: st.column_config.NumberColumn(format="percent")
            for name in ("lift", "low", "high")
        },
    )
    st.subheader("Guardrails")
    guardrails = guardrail_rows(analysis)
    if guardrails:
        st.dataframe(guardrails, hide_index=True, width="stretch")
    else:
        st.caption("This experiment has no guardrails.")
    st.subheader("Cumulative lift over time")
    _cumulative_chart(cumulative_rows(analysis))


def _admin(source: DataSource, entry: dict[str, Any]) -> None:
    """Pause or resume the experiment or one variant: an admin key, a confirmation, a note
    (and for resume the reviewer), each checked before the button turns on."""
    experiment = entry["experiment"]
    key = experiment["key"]
    st.subheader("Pause or resume")
    if experiment["status"] in ("draft", "stopped"):
        st.caption(f"{key} is {experiment['status']}: there is nothing to pause or resume.")
        return
    admin_key = st.text_input(
        "Admin API key", type="password", key="xp-admin-key",
        help="A key with the admin scope (`tastebud keys create --scope admin`).",
    )  # fmt: skip
    action = st.radio("Action", ["pause", "resume"], horizontal=True, key="xp-action")
    targets = ["the whole experiment", *(v["name"] for v in experiment["variants"][1:])]
    target = st.selectbox("What", targets, key="xp-target")
    variant = None if target == targets[0] else target
    reviewer = ""
    if action == "resume":
        reviewer = st.text_input("Reviewed by", key="xp-reviewer", max_chars=200)
    note = st.text_area("Note (why; kept in the audit trail)", key="xp-note", max_chars=2000)
    what = f"{action} {target if variant else key}"
    confirmed = st.checkbox(f"Yes, {what}", key="xp-confirm")
    missing = [
        name
        for name, value in (("an admin key", admin_key), ("a note", note), ("a reviewer", reviewer))
        if not value.strip() and (name != "a reviewer" or action == "resume")
    ]
    if missing:
        st.caption("Needs " + " and ".join(missing) + " before it can be applied.")
    if not st.button("Apply", disabled=bool(missing) or not confirmed, key="xp-apply"):
        return
    try:
        if action == "pause":
            done = source.pause_experiment(key, admin_key, note=note.strip(), variant=variant)
        else:
            done = source.resume_experiment(
                key, admin_key, reviewed_by=reviewer.strip(), note=note.strip(), variant=variant
            )
    except DashboardError as error:
        st.error(f"Refused: {error}", icon=":material/block:")
        return
    paused = done["experiment"].get("paused_variants") or {}
    after = f"; paused variants: {', '.join(paused)}" if paused else ""
    st.success(f"Done: {key} is {done['experiment']['status']}{after}.")


def _audit(source: DataSource, key: str) -> dict[str, Any] | None:
    entry = attempt(lambda: source.experiment(key), f"experiment {key}")
    if entry is not None and entry.get("audit"):
        with st.expander("Audit trail"):
            rows = [
                {k: a[k] for k in ("at", "actor", "action", "changed", "note")}
                for a in entry["audit"]
            ]
            st.dataframe(rows, hide_index=True, width="stretch")
    return entry


def render(source: DataSource) -> None:
    st.title("Experiments")
    listing = attempt(source.experiments, "the experiments")
    if listing is None:
        return
    rows = experiment_rows(listing)
    if not rows:
        st.info(
            "No experiments yet: define one with `PUT /v1/experiments/{key}` (or "
            "`tastebud experiments`) and start it; it shows here with its analysis."
        )
        return
    st.dataframe(rows, hide_index=True, width="stretch")
    keys = [row["key"] for row in rows]
    wanted = st.query_params.get("experiment")  # ?experiment=KEY opens that one
    chosen = st.selectbox(
        "Experiment", keys, index=keys.index(wanted) if wanted in keys else 0, key="experiment"
    )
    entry = _audit(source, chosen)
    analysis = read_analysis(source, chosen)
    if analysis is not None:
        show_analysis(analysis)
    if entry is not None:
        _admin(source, entry)
