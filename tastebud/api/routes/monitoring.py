"""``GET /v1/monitoring`` and ``/v1/monitoring/history``: the model-monitoring results the
``monitor`` and ``retrain`` jobs (or ``tastebud monitor check``) recorded. The server reads
them; it never runs checks on a request (serving reads, jobs write)."""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tastebud.api.deps import ReadKey
from tastebud.api.errors import ApiError
from tastebud.monitoring.results import MonitorResultStore, StoredCheck
from tastebud.stores import StoreUnavailable

router = APIRouter(tags=["monitoring"])
_lock = threading.Lock()

CheckName = Literal[
    "baseline", "offline", "lists", "scores", "age", "new_data", "data_drift", "online"
]
StatusName = Literal["pass", "error", "fail"]
SEVERITY = {"pass": 0, "warn": 1, "error": 2, "fail": 3}


class MonitorResultOut(BaseModel):
    run_id: str
    model_version: str
    check: str
    status: str
    as_of: str
    checked_at: str
    message: str
    metrics: dict[str, Any]
    details: dict[str, Any]


class MonitoringOut(BaseModel):
    """The latest run: the version judged, its overall status (the worst of its checks'),
    the retraining triggers that fire, and each check."""

    run_id: str | None
    model_version: str | None
    as_of: str | None
    status: str | None
    firing: list[str]
    checks: list[MonitorResultOut]


class MonitoringHistoryOut(BaseModel):
    results: list[MonitorResultOut]


def results_store(app: FastAPI) -> MonitorResultStore:
    """The app's result history, opened on first use (one per worker process)."""
    opened: MonitorResultStore | None = getattr(app.state, "monitoring_results", None)
    if opened is not None:
        return opened
    with _lock:
        opened = getattr(app.state, "monitoring_results", None)
        if opened is None:
            backend = app.state.tastebud.stores.database.sql_backend("monitoring")
            opened = MonitorResultStore(backend)
            app.state.monitoring_results = opened
    return opened


def close_results_store(app: FastAPI) -> None:
    opened: MonitorResultStore | None = getattr(app.state, "monitoring_results", None)
    if opened is not None:
        opened.close()
        app.state.monitoring_results = None


def _out(row: StoredCheck) -> MonitorResultOut:
    data = row.as_dict()
    return MonitorResultOut(**{k: v for k, v in data.items() if k != "id"})


async def _read(request: Request, call: Any, **arguments: Any) -> list[StoredCheck]:
    try:
        store = await run_in_threadpool(results_store, request.app)
        return await run_in_threadpool(lambda: call(store, **arguments))  # type: ignore[no-any-return]
    except StoreUnavailable as error:
        raise ApiError(503, "store_unavailable", f"monitoring results: {error}") from None


@router.get(
    "/v1/monitoring", response_model=MonitoringOut, summary="Latest model-monitoring results"
)
async def latest(request: Request, key: ReadKey) -> Any:
    rows = await _read(request, MonitorResultStore.latest)
    if not rows:
        return MonitoringOut(
            run_id=None, model_version=None, as_of=None, status=None, firing=[], checks=[]
        )
    judged = [row for row in rows if row.check != "baseline"]
    return MonitoringOut(
        run_id=rows[0].run_id,
        model_version=rows[0].model_version,
        as_of=rows[0].as_of.isoformat(),
        status=max((row.status for row in judged), key=lambda s: SEVERITY.get(s, 0), default=None),
        firing=[
            str(row.details.get("trigger"))
            for row in judged
            if row.status == "fail" and row.details.get("trigger")
        ],
        checks=[_out(row) for row in rows],
    )


@router.get(
    "/v1/monitoring/history",
    response_model=MonitoringHistoryOut,
    summary="Model-monitoring results, newest first",
)
async def history(
    request: Request,
    key: ReadKey,
    check: Annotated[CheckName | None, Query(description="One check.")] = None,
    status: Annotated[StatusName | None, Query(description="One status.")] = None,
    model_version: Annotated[str | None, Query(max_length=200, description="One version.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many results.")] = 100,
) -> Any:
    rows = await _read(
        request,
        MonitorResultStore.history,
        check=check,
        status=status,
        model_version=model_version,
        limit=limit,
    )
    return MonitoringHistoryOut(results=[_out(row) for row in rows])


class ShadowVersionOut(BaseModel):
    comparisons: int
    production_version: str | None
    k: int
    overlap_mean: float | None
    overlap_median: float | None
    correlation_mean: float | None
    correlation_median: float | None
    correlated: int
    latency_difference_ms_median: float | None
    latency_difference_ms_p95: float | None


class ShadowFleetOut(BaseModel):
    """Every live worker's recent comparisons merged (each publishes its own through the
    online store every poll; a stopped worker's expire after a minute)."""

    workers: int
    counts: dict[str, int]
    versions: dict[str, ShadowVersionOut]


class ShadowOut(BaseModel):
    """This worker's shadow model and the rolling summary of its last comparisons with
    production (per worker process: each worker samples its own requests), and ``fleet``,
    every worker's merged (null when the online store could not be read)."""

    alias: str
    sample: float
    shadow_version: str | None
    production_version: str | None
    problem: str | None
    queued: int
    counts: dict[str, int]
    versions: dict[str, ShadowVersionOut]
    fleet: ShadowFleetOut | None


@router.get(
    "/v1/monitoring/shadow",
    response_model=ShadowOut,
    summary="The shadow model against production: this worker's and the fleet's comparisons",
)
async def shadow(request: Request, key: ReadKey) -> Any:
    service = getattr(request.app.state, "recommendations", None)
    if service is None:
        raise ApiError(503, "serving_unavailable", "the recommendation service is starting")
    return await run_in_threadpool(service.shadow.status)  # the fleet's: an online store read
