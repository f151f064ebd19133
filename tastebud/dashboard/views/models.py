"""Models: the registered versions and where each alias points, their holdout metrics over
time, the AutoML search of a version (the best-so-far curve and the trials) and the data
it was trained on; promote a version or roll an alias back with an admin key, after a
confirmation (the server validates the version before the alias moves)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from tastebud.dashboard.source import DashboardError, DataSource
from tastebud.dashboard.views.common import attempt

ALIASES = ("production", "canary", "shadow")


def _versions(listing: dict[str, Any]) -> None:
    aliases = listing["aliases"]
    st.write(
        "Aliases: " + (", ".join(f"**{a}** → `{v}`" for a, v in aliases.items()) or "none yet")
    )
    rows = [
        {
            "version": v["model_version"], "model": v["model"], "aliases": ", ".join(v["aliases"]),
            "registered": v["registered_at"][:19].replace("T", " "), "users": v["user_count"],
            "items": v["item_count"], **{k: m for k, m in v["metrics"].items() if m is not None},
        }
        for v in listing["versions"]
    ]  # fmt: skip
    st.dataframe(rows, hide_index=True, width="stretch")


def _metrics_over_time(versions: list[dict[str, Any]]) -> None:
    st.subheader("Metrics over time")
    names = sorted({name for v in versions for name, m in v["metrics"].items() if m is not None})
    if not names:
        st.info(
            "No version has holdout metrics: they are recorded when a model is trained "
            "with an evaluation holdout (`tastebud train`)."
        )
        return
    default = [n for n in names if n.startswith("ndcg")][:1] or names[:1]
    chosen = st.multiselect("Metrics", names, default=default, key="model-metrics")
    series = [
        {"registered": v["registered_at"], **{n: v["metrics"].get(n) for n in chosen}}
        for v in reversed(versions)
    ]
    if chosen:  # one version is a point, which a line chart does not draw
        chart = st.line_chart if len(series) > 1 else st.scatter_chart
        chart(series, x="registered", y=chosen)


def _search(source: DataSource, version: str) -> None:
    st.subheader(f"Training of {version}")
    try:
        training = source.training(version)
    except DashboardError as error:
        st.info(f"No training record to show: {error}")
        return
    search = training.get("search")
    if not search:
        st.info("This version was trained without an AutoML search (`tastebud train --auto`).")
    else:
        st.caption(
            f"best validation NDCG@10 {search.get('validation_ndcg@10', float('nan')):.4f} · "
            f"{len(search.get('trials', []))} trials in {search.get('elapsed_seconds', 0):.0f} s"
        )
        curve = [
            {"trial": n, "best so far": value}
            for n, value in enumerate(search.get("curve_best_so_far", []), 1)
            if value is not None
        ]
        if curve:
            st.line_chart(curve, x="trial", y="best so far")
        st.dataframe(search.get("trials", []), width="stretch", height=240)
    snapshot = {k: training[k] for k in ("data", "snapshot", "time_range") if training.get(k)}
    if snapshot:
        with st.expander("Training data snapshot"):
            st.json(snapshot)


def _admin(source: DataSource, listing: dict[str, Any]) -> None:
    st.subheader("Promote or roll back")
    versions = [v["model_version"] for v in listing["versions"]]
    key = st.text_input(
        "Admin API key",
        type="password",
        key="admin-key",
        help="A key with the admin scope (`tastebud keys create --scope admin`).",
    )
    alias = st.selectbox("Alias", ALIASES, key="admin-alias")
    version = st.selectbox("Version to promote", versions, key="admin-version")
    action = st.radio("Action", ["promote", "rollback"], horizontal=True, key="admin-action")
    what = (
        f"point {alias} at {version}"
        if action == "promote"
        else f"roll {alias} back to its previous version"
    )
    confirmed = st.checkbox(f"Yes, {what}", key="admin-confirm")
    if not st.button("Apply", disabled=not (confirmed and key), key="admin-apply"):
        return
    try:
        if action == "promote":
            done = source.promote(version, alias, key)
        else:
            done = source.rollback(alias, key)
    except DashboardError as error:
        st.error(f"Refused: {error}", icon=":material/block:")
        return
    st.success(
        f"{done['alias']} now points at {done['model_version']} (was {done['previous'] or 'none'})."
    )


def render(source: DataSource) -> None:
    st.title("Models")
    listing = attempt(source.models, "the model registry")
    if listing is None:
        return
    if not listing["versions"]:
        st.info("No model is registered yet: `tastebud train --promote production`.")
        return
    _versions(listing)
    _metrics_over_time(listing["versions"])
    names = [v["model_version"] for v in listing["versions"]]
    # ?version=ID in the address opens that version; else the one serving (production).
    wanted = st.query_params.get("version") or listing["aliases"].get("production")
    chosen = st.selectbox(
        "Version", names, index=names.index(wanted) if wanted in names else 0, key="model-version"
    )
    _search(source, chosen)
    _admin(source, listing)
