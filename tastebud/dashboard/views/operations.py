"""Operations: is tastebud healthy? Ingestion (rate; accepted, duplicate, rejected), the
dead-letter queue (size, reasons), job runs and failures, serving latency percentiles,
the precomputed-list hit ratio of the online store, data-quality results and model
monitoring (drift). Read from ``/metrics`` and the read APIs; nothing here writes."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import streamlit as st

from tastebud.dashboard.metrics import Scrape
from tastebud.dashboard.source import DataSource
from tastebud.dashboard.views.common import attempt

EVENTS = "tastebud_feedback_events_total"
LATENCY = "tastebud_reco_hybrid_latency_ms"
PRECOMPUTED = "tastebud_reco_precomputed_requests_total"
FEATURE_HITS = "tastebud_feature_cache_hits_count_total"
FEATURE_MISSES = "tastebud_feature_cache_misses_count_total"


def _rate(received: float) -> float | None:
    """Events per second since this session's previous look (None on the first)."""
    now = time.monotonic()
    previous = st.session_state.get("ops-previous")
    st.session_state["ops-previous"] = (now, received)
    if previous is None or now <= previous[0]:
        return None
    return max(0.0, received - previous[1]) / (now - previous[0])


def _ingestion(scrape: Scrape) -> None:
    st.subheader("Ingestion")
    outcomes = scrape.by_label(EVENTS, "outcome")
    received = sum(outcomes.values())
    rate = _rate(received)
    columns = st.columns(4)
    columns[0].metric(
        "Events/s since last look",
        "—" if rate is None else f"{rate:,.1f}",
        help="Refresh the page to measure over the time between two looks.",
    )
    for column, outcome in zip(columns[1:], ("accepted", "duplicate", "rejected"), strict=True):
        column.metric(outcome.capitalize(), f"{outcomes.get(outcome, 0):,.0f}")
    others = {k: v for k, v in outcomes.items() if k not in ("accepted", "duplicate", "rejected")}
    if others:
        st.caption("Other outcomes: " + ", ".join(f"{k} {v:,.0f}" for k, v in others.items()))


def _serving(scrape: Scrape) -> None:
    st.subheader("Serving")
    columns = st.columns(5)
    for column, q in zip(columns, (0.5, 0.95, 0.99), strict=False):
        value = scrape.quantile(LATENCY, q, stage="total")
        column.metric(f"Ranking p{int(q * 100)}", "—" if value is None else f"{value:.1f} ms")
    outcomes = scrape.by_label(PRECOMPUTED, "outcome")
    asked = sum(outcomes.values())
    columns[3].metric(
        "Precomputed-list hits",
        "—" if not asked else f"{outcomes.get('hit', 0) / asked:.0%}",
        help="Default-shape requests answered from the list stored in the online store.",
    )
    hits, misses = scrape.total(FEATURE_HITS), scrape.total(FEATURE_MISSES)
    columns[4].metric(
        "Feature cache hits",
        "—" if hits + misses == 0 else f"{hits / (hits + misses):.0%}",
        help="Online feature reads answered from the cache (since the server started).",
    )


def _dead_letters(source: DataSource) -> None:
    st.subheader("Dead-letter queue")
    summary = attempt(source.dlq, "the dead-letter queue")
    if summary is None:
        return
    size = summary["size"]
    left, right = st.columns([1, 2])
    left.metric(
        "Entries", f"{sum(size.values()):,}", help=", ".join(f"{k} {v}" for k, v in size.items())
    )
    if summary["reasons"]:
        right.bar_chart(summary["reasons"], horizontal=True, x_label="entries")
    else:
        right.success("Empty: every event was stored or refused with a reason.")


def _jobs(source: DataSource) -> None:
    st.subheader("Jobs")
    answer = attempt(lambda: source.job_runs(limit=500), "the job runs")
    if answer is None:
        return
    runs: list[dict[str, Any]] = answer["runs"]
    if not runs:
        st.info("No job has run yet: `tastebud jobs run NAME` or `tastebud scheduler`.")
        return
    counts = Counter((run["job_name"], run["status"]) for run in runs)
    rows = []
    for job in sorted({run["job_name"] for run in runs}):
        latest = next(run for run in runs if run["job_name"] == job)
        rows.append({
            "job": job, "last status": latest["status"], "last run": latest["started_at"][:19],
            "succeeded": counts[(job, "succeeded")], "failed": counts[(job, "failed")]
            + counts[(job, "timeout")], "last error": latest["error"],
        })  # fmt: skip
    st.dataframe(rows, hide_index=True, width="stretch")


def _checks(title: str, answer: dict[str, Any] | None, empty: str) -> None:
    st.subheader(title)
    if answer is None:
        return
    if not answer["checks"]:
        st.info(empty)
        return
    status = answer["status"] or "unknown"
    shown = {"pass": st.success, "warn": st.warning}.get(status, st.error)
    shown(f"Latest run {answer['run_id']} as of {answer['as_of']}: {status}")
    rows = [
        {"check": c["check"], "status": c["status"], "message": c["message"]}
        for c in answer["checks"]
    ]
    st.dataframe(rows, hide_index=True, width="stretch")


def render(source: DataSource) -> None:
    st.title("Operations")
    text = attempt(source.metrics_text, "the server's metrics")
    if text is not None:
        scrape = Scrape.parse(text)
        _ingestion(scrape)
        _serving(scrape)
    _dead_letters(source)
    _jobs(source)
    _checks(
        "Data quality", attempt(source.quality, "the data-quality results"),
        "No data-quality run yet: `tastebud quality check` or the `quality` job.",
    )  # fmt: skip
    _checks(
        "Model monitoring and drift", attempt(source.monitoring, "the monitoring results"),
        "No monitoring run yet: `tastebud monitor check` or the `monitor` job.",
    )  # fmt: skip
