"""What the shadow model is judged by, per comparison of its list with production's for the
same request: overlap@k, the rank correlation of the two models' scores on the items both
listed (Spearman), and the latency difference (shadow minus production). Each comparison
goes to Prometheus (histograms per shadow version) and to a small rolling summary per
worker process (the last ``KEEP`` comparisons), which ``GET /v1/monitoring/shadow`` shows.

Each worker samples its own requests, so one worker's summary is a part of the picture. The
fleet's: every worker publishes its recent comparisons to the online store every poll
(``publish``: Redis in production, shared by every node; the SQLite file by one machine's
workers), under a key that expires ``FLEET_TTL_SECONDS`` after its worker stops, and
``fleet`` merges every live worker's into the same figures.

The ranking side (``tastebud.ranking.shadow``) runs the shadow model off the request path
and hands each comparison here; nothing here touches a request.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tastebud.observability import metrics
from tastebud.stores import OnlineStore

KEEP = 1_000  # comparisons the rolling summary holds, per shadow version
FLEET_KEY = "shadow:workers"  # the ids of the workers that published, newest last
FLEET_WORKERS = 512  # ids the list keeps (a worker appears once per publish)
FLEET_TTL_SECONDS = 60.0
SHARE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
CORRELATION_BUCKETS = (-0.5, 0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
DIFFERENCE_BUCKETS = (-0.1, -0.025, -0.01, -0.005, -0.001, 0.0, 0.001, 0.005, 0.01, 0.025, 0.1)

OVERLAP = metrics.histogram(
    "shadow",
    "overlap",
    "ratio",
    "Overlap@k of the shadow model's list with the list production served, by shadow version.",
    ["shadow_version"],
    buckets=SHARE_BUCKETS,
)
CORRELATION = metrics.histogram(
    "shadow",
    "rank_correlation",
    "ratio",
    "Spearman correlation of the shadow's and production's scores on the items both listed.",
    ["shadow_version"],
    buckets=CORRELATION_BUCKETS,
)
LATENCY_DIFFERENCE = metrics.histogram(
    "shadow",
    "latency_difference",
    "seconds",
    "Shadow ranking time minus production's for the same request (lists ranked on request).",
    ["shadow_version"],
    buckets=DIFFERENCE_BUCKETS,
)
REQUESTS = metrics.counter(
    "shadow",
    "requests",
    "total",
    "Served lists offered to the shadow, by outcome: compared, dropped (queue full), "
    "skipped (no shadow model ready), failed (the shadow could not rank).",
    ["outcome"],
)


@dataclass(frozen=True)
class Comparison:
    """One request ranked by both models."""

    shadow_version: str
    production_version: str | None
    k: int
    overlap: float  # |top-k of both| / k
    correlation: float | None  # None: fewer than two shared items, or constant scores
    latency_difference_ms: float | None  # None: production's list was not ranked on request


def compare(
    production: Sequence[tuple[str, float]],
    shadow: Sequence[tuple[str, float]],
    *,
    shadow_version: str,
    production_version: str | None,
    production_ms: float | None,
    shadow_ms: float,
) -> Comparison:
    """Compare two lists of (item id, score), best first, over production's length."""
    k = max(len(production), 1)
    mine = {item: score for item, score in production}
    theirs = {item: score for item, score in shadow[:k]}
    shared = [item for item in mine if item in theirs]
    correlation = None
    if len(shared) >= 2:
        a = np.array([mine[item] for item in shared])
        b = np.array([theirs[item] for item in shared])
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            # lazy: scipy.stats costs a noticeable import; only the shadow thread needs it
            from scipy.stats import spearmanr

            value = float(spearmanr(a, b).statistic)
            correlation = value if math.isfinite(value) else None
    return Comparison(
        shadow_version=shadow_version,
        production_version=production_version,
        k=k,
        overlap=len(shared) / k,
        correlation=correlation,
        latency_difference_ms=None if production_ms is None else shadow_ms - production_ms,
    )


class ShadowSummary:
    """The last comparisons per shadow version and the outcome counts (thread-safe)."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._recent: dict[str, deque[Comparison]] = {}
        self._counts: dict[str, int] = {"compared": 0, "dropped": 0, "skipped": 0, "failed": 0}
        self._lock = threading.Lock()
        self.last_at: float | None = None

    def record(self, comparison: Comparison) -> None:
        version = comparison.shadow_version
        OVERLAP.labels(version).observe(comparison.overlap)
        if comparison.correlation is not None:
            CORRELATION.labels(version).observe(comparison.correlation)
        if comparison.latency_difference_ms is not None:
            LATENCY_DIFFERENCE.labels(version).observe(comparison.latency_difference_ms / 1000)
        with self._lock:
            recent = self._recent.get(version)
            if recent is None:
                recent = self._recent[version] = deque(maxlen=self.keep)
            recent.append(comparison)
            self.last_at = time.time()
        self.count("compared")

    def count(self, outcome: str) -> None:
        REQUESTS.labels(outcome).inc()
        with self._lock:
            self._counts[outcome] = self._counts.get(outcome, 0) + 1

    @property
    def total(self) -> int:
        """Every outcome counted so far: a change since the last look means news."""
        with self._lock:
            return sum(self._counts.values())

    def as_dict(self) -> dict[str, Any]:
        """Per shadow version: comparisons held, mean and median overlap@k, mean and median
        rank correlation, latency difference median and p95 (ms); and the outcome counts."""
        recent, counts = self._held()
        return {
            "counts": counts,
            "versions": {version: _figures(rows) for version, rows in recent.items() if rows},
        }

    def _held(self) -> tuple[dict[str, list[Comparison]], dict[str, int]]:
        with self._lock:
            recent = {version: list(rows) for version, rows in self._recent.items()}
            return recent, dict(self._counts)

    def state(self) -> bytes:
        """The comparisons held and the counts as JSON: what ``publish`` shares."""
        recent, counts = self._held()
        rows = {
            version: [
                [r.production_version, r.k, r.overlap, r.correlation, r.latency_difference_ms]
                for r in held
            ]
            for version, held in recent.items()
        }
        return json.dumps({"counts": counts, "recent": rows}, separators=(",", ":")).encode()


def worker_id() -> str:
    """This worker process among the fleet's: its host, its pid and a token."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def publish(
    online: OnlineStore, worker: str, summary: ShadowSummary, ttl: float = FLEET_TTL_SECONDS
) -> None:
    """Share this worker's comparisons with the fleet (see the module docstring)."""
    online.set_many({f"shadow:worker:{worker}": summary.state()}, ttl_seconds=ttl)
    # The list outlives any one worker's entry: a worker with a shorter ttl must not
    # expire the others' names with it.
    lasts = max(ttl, FLEET_TTL_SECONDS)
    online.push_lists({FLEET_KEY: [worker.encode()]}, keep=FLEET_WORKERS, ttl_seconds=lasts)


def fleet(online: OnlineStore) -> dict[str, Any]:
    """Every live worker's comparisons merged: the workers counted, their outcome counts
    summed, and per shadow version the figures ``as_dict`` gives over all their rows."""
    (listed,) = online.get_lists([FLEET_KEY])
    workers = list(dict.fromkeys(value.decode() for value in listed))
    states = online.get_many([f"shadow:worker:{worker}" for worker in workers])
    counts: dict[str, int] = {}
    rows: dict[str, list[Comparison]] = {}
    live = 0
    for raw in states:
        if raw is None:  # stopped (expired) since it was listed
            continue
        live += 1
        state = json.loads(raw)
        for outcome, count in state["counts"].items():
            counts[outcome] = counts.get(outcome, 0) + int(count)
        for version, held in state["recent"].items():
            rows.setdefault(version, []).extend(
                Comparison(version, production, k, overlap, correlation, difference)
                for production, k, overlap, correlation, difference in held
            )
    return {
        "workers": live,
        "counts": counts,
        "versions": {version: _figures(held) for version, held in rows.items() if held},
    }


def _figures(rows: list[Comparison]) -> dict[str, Any]:
    overlap = np.array([row.overlap for row in rows])
    correlation = np.array([row.correlation for row in rows if row.correlation is not None])
    difference = np.array(
        [row.latency_difference_ms for row in rows if row.latency_difference_ms is not None]
    )

    def stat(values: np.ndarray, how: str, q: float = 50) -> float | None:
        if len(values) == 0:
            return None
        value = values.mean() if how == "mean" else np.percentile(values, q)
        return round(float(value), 4)

    return {
        "comparisons": len(rows),
        "production_version": rows[-1].production_version,
        "k": rows[-1].k,
        "overlap_mean": stat(overlap, "mean"),
        "overlap_median": stat(overlap, "q"),
        "correlation_mean": stat(correlation, "mean"),
        "correlation_median": stat(correlation, "q"),
        "correlated": len(correlation),
        "latency_difference_ms_median": stat(difference, "q"),
        "latency_difference_ms_p95": stat(difference, "q", 95),
    }
