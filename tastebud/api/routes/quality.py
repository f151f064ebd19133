"""``GET /v1/quality`` and ``/v1/quality/history``: the data-quality results the ``quality``
job (or ``tastebud quality check``) recorded. The server reads them; it never runs checks
on a request (serving reads, jobs write)."""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tastebud.api.deps import ReadKey
from tastebud.api.errors import ApiError
from tastebud.quality.results import QualityResultStore, StoredResult
from tastebud.stores import StoreUnavailable

router = APIRouter(tags=["quality"])
_lock = threading.Lock()

CheckName = Literal[
    "schema", "freshness", "completeness", "volume", "drift", "cold_start", "staleness"
]
StatusName = Literal["pass", "warn", "error", "fail"]


class QualityResultOut(BaseModel):
    run_id: str
    check: str
    status: str
    critical: bool
    as_of: str
    checked_at: str
    message: str
    metrics: dict[str, Any]
    details: dict[str, Any]


class QualityOut(BaseModel):
    """The latest run: its overall status (the worst of its checks'), the critical checks
    that failed (the train job refuses the data while any does), and each check."""

    run_id: str | None
    as_of: str | None
    status: str | None
    blocking: list[str]
    checks: list[QualityResultOut]


class QualityHistoryOut(BaseModel):
    results: list[QualityResultOut]


def results_store(app: FastAPI) -> QualityResultStore:
    """The app's result history, opened on first use (one per worker process)."""
    opened: QualityResultStore | None = getattr(app.state, "quality_results", None)
    if opened is not None:
        return opened
    with _lock:
        opened = getattr(app.state, "quality_results", None)
        if opened is None:
            opened = QualityResultStore(app.state.tastebud.stores.database.sql_backend("quality"))
            app.state.quality_results = opened
    return opened


def close_results_store(app: FastAPI) -> None:
    opened: QualityResultStore | None = getattr(app.state, "quality_results", None)
    if opened is not None:
        opened.close()
        app.state.quality_results = None


def _out(row: StoredResult) -> QualityResultOut:
    data = row.as_dict()
    return QualityResultOut(**{k: v for k, v in data.items() if k != "id"})


async def _read(request: Request, call: Any, **arguments: Any) -> list[StoredResult]:
    try:
        store = await run_in_threadpool(results_store, request.app)
        return await run_in_threadpool(lambda: call(store, **arguments))  # type: ignore[no-any-return]
    except StoreUnavailable as error:
        raise ApiError(503, "store_unavailable", f"quality results: {error}") from None


@router.get("/v1/quality", response_model=QualityOut, summary="Latest data-quality results")
async def latest(request: Request, key: ReadKey) -> Any:
    rows = await _read(request, QualityResultStore.latest)
    if not rows:
        return QualityOut(run_id=None, as_of=None, status=None, blocking=[], checks=[])
    severity = {"pass": 0, "warn": 1, "error": 2, "fail": 3}
    return QualityOut(
        run_id=rows[0].run_id,
        as_of=rows[0].as_of.isoformat(),
        status=max((row.status for row in rows), key=lambda status: severity.get(status, 0)),
        blocking=[row.check for row in rows if row.critical and row.status == "fail"],
        checks=[_out(row) for row in rows],
    )


@router.get(
    "/v1/quality/history",
    response_model=QualityHistoryOut,
    summary="Data-quality results, newest first",
)
async def history(
    request: Request,
    key: ReadKey,
    check: Annotated[CheckName | None, Query(description="One check.")] = None,
    status: Annotated[StatusName | None, Query(description="One status.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many results.")] = 100,
) -> Any:
    rows = await _read(request, QualityResultStore.history, check=check, status=status, limit=limit)
    return QualityHistoryOut(results=[_out(row) for row in rows])
