"""``/healthz`` (the process answers), ``/readyz`` (its stores answer), ``/metrics``.

``/readyz`` checks every store at once, each in a thread of its own (never queued behind
request work in the shared thread pool), under the request budgets of the stores
(``tastebud.stores.budget``), and answers within ``READY_TIMEOUT_SECONDS`` with one verdict
per store: a hung Redis is reported as the ``online`` store's, not the SQLite stores'."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from tastebud.api.deps import AppState, State
from tastebud.api.schemas import Health, Readiness
from tastebud.observability import metrics

router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 0.8
# Checks run beside request work, not in its thread pool; this many at once (a hung store
# can hold one thread per check until its timeout).
READY_THREADS = 8


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _checks(state: AppState) -> dict[str, Callable[[], object]]:
    return {
        "events": state.stores.events.last_seq,
        "catalog": state.stores.catalog.count_users,
        "online": lambda: state.stores.online.get("gw:ready"),
        "dead_letters": lambda: state.stores.database.gateway.dead_letters.count(kind="transient"),
    }


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The stores are reachable",
    responses={503: {"model": Readiness, "description": "A store is unreachable."}},
)
async def readyz(request: Request, state: State) -> JSONResponse:
    limiter = _ready_limiter(request.app)

    async def verdict(check: Callable[[], object]) -> str:
        try:
            # Abandoned on timeout: waiting for a hung thread to return would hang /readyz.
            checking = anyio.to_thread.run_sync(check, abandon_on_cancel=True, limiter=limiter)
            await asyncio.wait_for(checking, READY_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"no answer within {READY_TIMEOUT_SECONDS:g} s"
        except Exception as error:
            return f"{type(error).__name__}: {str(error)[:200]}"
        return "ok"

    checks = _checks(state)
    verdicts = await asyncio.gather(*(verdict(check) for check in checks.values()))
    results = dict(zip(checks, verdicts, strict=True))
    ready = all(value == "ok" for value in results.values())
    model_ok, results["model"] = _model_verdict(request.app)
    ready = ready and model_ok
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": results},
        status_code=200 if ready else 503,
    )


def _model_verdict(app: FastAPI) -> tuple[bool, str]:
    """Whether a model serves: ready when the alias's version does (or no version is
    promoted yet: the cold-start lists serve), or an earlier one does in its place (said in
    the verdict); not ready when the alias names a version and none loads, rather than
    answering empty lists that look healthy."""
    service = getattr(app.state, "recommendations", None)
    problem = getattr(service, "model_problem", None)
    if problem is None:
        return True, "ok"
    serving = service.snapshot.model_version  # type: ignore[union-attr]
    if serving is None:
        return False, f"no model: {problem}"
    return True, f"ok, degraded: {problem}"


def _ready_limiter(app: FastAPI) -> anyio.CapacityLimiter:
    limiter: anyio.CapacityLimiter | None = getattr(app.state, "ready_threads", None)
    if limiter is None:
        limiter = app.state.ready_threads = anyio.CapacityLimiter(READY_THREADS)
    return limiter


class _DeadLetterCollector(Collector):
    """DLQ size and drops, read from the store at scrape time: they are shared by every
    worker, so they must not be counted per process."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = self.state.stores.database.gateway.dead_letters
        try:
            invalid, transient = store.count(kind="invalid"), store.count(kind="transient")
            dropped = store.dropped()
        except Exception:
            return
        size = GaugeMetricFamily(
            "tastebud_feedback_dlq_size_count", "Entries in the dead-letter queue.", labels=["kind"]
        )
        size.add_metric(["invalid"], invalid)
        size.add_metric(["transient"], transient)
        yield size
        drops = GaugeMetricFamily(
            "tastebud_feedback_dlq_dropped_count",
            "Entries the dead-letter queue dropped (oldest beyond its cap, or past its TTL).",
            labels=["cause"],
        )
        drops.add_metric(["cap"], dropped.cap)
        drops.add_metric(["ttl"], dropped.ttl)
        yield drops


def _exposition(state: AppState) -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry: Any = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = metrics.registry
    shared = CollectorRegistry()
    shared.register(_DeadLetterCollector(state))
    return generate_latest(registry) + generate_latest(shared)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text exposition."}},
)
async def metrics_endpoint(state: State) -> Response:
    body = await run_in_threadpool(_exposition, state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
