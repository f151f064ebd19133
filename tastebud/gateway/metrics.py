"""The gateway's Prometheus metrics (``tastebud_feedback_*``, ``tastebud_http_*``).

Counters named ``..._count`` by the issue are exposed with the ``_total`` suffix Prometheus
adds to every counter (``tastebud_feedback_enriched_count_total``).
"""

from __future__ import annotations

from tastebud.observability import metrics

ENRICHED = metrics.counter("feedback", "enriched", "count", "Events enriched by the gateway.")
ENRICH_FAILED = metrics.counter(
    "feedback",
    "enrich_fail",
    "count",
    "Events stored without part of their enrichment (its store was unavailable).",
)
DLQ_ADDED = metrics.counter(
    "feedback", "dlq", "count", "Events sent to the dead-letter queue.", labels=["kind"]
)
RETRY_SUCCESS = metrics.counter(
    "feedback",
    "retry_success",
    "count",
    "Events stored after a transient failure: by an in-request retry or by `dlq retry`.",
    labels=["source"],
)
STORE_RETRIES = metrics.counter(
    "feedback", "store_retries", "total", "Append attempts retried after a transient failure."
)
EVENTS = metrics.counter(
    "feedback", "events", "total", "Events received, by outcome.", labels=["outcome"]
)
DLQ_ALERTS = metrics.counter(
    "feedback", "dlq_alerts", "total", "Alerts raised because the DLQ share passed the threshold."
)
ENRICH_SECONDS = metrics.histogram(
    "feedback",
    "enrich",
    "seconds",
    "Enrichment time per event (a request's enrichment time over its events).",
    buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2),
)
REQUESTS = metrics.counter(
    "http", "requests", "total", "HTTP requests by route and status.", ["method", "route", "status"]
)
REQUEST_SECONDS = metrics.histogram(
    "http",
    "request_duration",
    "seconds",
    "HTTP request latency by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
