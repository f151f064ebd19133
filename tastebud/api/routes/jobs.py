"""``GET /v1/jobs/runs``: the job run history (``read`` scope), newest first, as ``tastebud
jobs history`` shows it: the dashboard's operations page counts runs and failures from it.
The server only reads it; the scheduler and ``tastebud jobs run`` write it."""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tastebud.api.errors import ApiError
from tastebud.jobs.history import RunHistory
from tastebud.jobs.history_open import open_run_history
from tastebud.stores import StoreUnavailable

router = APIRouter(tags=["jobs"])
_lock = threading.Lock()
Status = Literal["running", "succeeded", "failed", "timeout", "skipped", "refused"]
JobName = Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9_-]+$")]


class RunOut(BaseModel):
    run_id: str
    job_name: str
    interval_start: str
    interval_end: str
    attempt: int
    status: str
    trigger: str
    started_at: str
    finished_at: str | None
    duration_seconds: float | None
    error: str | None
    error_kind: str | None


class RunsOut(BaseModel):
    runs: list[RunOut]


def run_history(app: FastAPI) -> RunHistory:
    """The app's run history, opened on first use (one per worker process)."""
    with _lock:
        opened: RunHistory | None = getattr(app.state, "run_history", None)
        if opened is None:
            opened = app.state.run_history = open_run_history(app.state.tastebud.settings)
    return opened


def close_run_history(app: FastAPI) -> None:
    opened: RunHistory | None = getattr(app.state, "run_history", None)
    if opened is not None:
        opened.close()
        app.state.run_history = None


@router.get("/v1/jobs/runs", response_model=RunsOut, summary="Job runs, newest first")
async def runs(
    request: Request,
    job: JobName | None = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    def read() -> RunsOut:
        history = run_history(request.app)
        records = history.list_runs(job_name=job, status=status, limit=limit)
        return RunsOut(
            runs=[
                RunOut(**{k: v for k, v in r.as_dict().items() if k in RunOut.model_fields})
                for r in records
            ]
        )

    try:
        return await run_in_threadpool(read)
    except StoreUnavailable as error:
        raise ApiError(503, "store_unavailable", f"job history: {error}") from None
