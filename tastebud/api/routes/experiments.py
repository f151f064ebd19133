"""``/v1/experiments``: experiment definitions over HTTP (docs/experiments.md).

Reads (``read`` scope): every experiment, one with its audit trail, and one's analysis
(409 ``no_exposures`` before any list of it was served). Writes (``admin``
scope): ``PUT`` a definition (a new draft, or a change the experiment's state allows),
and ``start``, ``pause``, ``resume`` (with ``reviewed_by`` and ``note``) and ``stop``. A
definition is checked whole before anything is stored (metrics, ranking overrides, the
variants' models against the registry, the namespace's range): an invalid one is a 422
naming the field (``details`` lists every problem); a change the state refuses, a 409.
Every change is audited under the caller's API key id. Workers see a change within one
poll of their ``ExperimentWatcher`` (2 s by default).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tastebud.api.deps import read_json, require
from tastebud.api.errors import ApiError
from tastebud.experiments.analysis import Analysis
from tastebud.experiments.definition import Experiment, Status, parse_definition
from tastebud.experiments.errors import (
    ExperimentConflict,
    ExperimentNotFound,
    InvalidDefinition,
)
from tastebud.experiments.records import AuditEntry, StoredExperiment
from tastebud.experiments.store import ExperimentStore
from tastebud.experiments.stored import NothingToAnalyze, analyze_stored
from tastebud.observability import get_logger
from tastebud.registry import RegistryError, open_registry
from tastebud.stores import StoreUnavailable

router = APIRouter(tags=["experiments"])
log_line = get_logger("tastebud.experiments")
_lock = threading.Lock()
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The experiment's key.")]
Note = Annotated[str, Field(max_length=2_000, description="Why: recorded in the audit trail.")]


class AuditOut(BaseModel):
    at: str
    actor: str
    action: str
    changed: list[str] = Field(description="The definition's fields the change touched.")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str


class ExperimentOut(BaseModel):
    """A stored definition; ``version`` moves with every change of any experiment."""

    experiment: Experiment
    version: int
    created_at: str
    updated_at: str
    audit: list[AuditOut] | None = Field(
        default=None, description="Every change, oldest first (one experiment's GET only)."
    )


class ExperimentsOut(BaseModel):
    experiments: list[ExperimentOut] = Field(description="By key.")


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note = ""


class PauseIn(ChangeIn):
    variant: str | None = Field(
        default=None,
        max_length=64,
        description="Pause one variant (its users get control) rather than the experiment.",
    )


class ResumeIn(BaseModel):
    """A person's review of a pause: required to resume."""

    model_config = ConfigDict(extra="forbid")

    reviewed_by: str = Field(min_length=1, max_length=200, pattern=r"\S")
    note: str = Field(min_length=1, max_length=2_000, pattern=r"\S")
    variant: str | None = Field(
        default=None, max_length=64, description="One paused variant; default: everything."
    )


def experiment_store(app: FastAPI) -> ExperimentStore:
    """The app's experiment store, opened on first use (one per worker process); serving's
    ``ExperimentWatcher`` may share it."""
    opened: ExperimentStore | None = getattr(app.state, "experiment_store", None)
    if opened is not None:
        return opened
    with _lock:
        opened = getattr(app.state, "experiment_store", None)
        if opened is None:
            backend = app.state.tastebud.stores.database.sql_backend("experiments")
            opened = app.state.experiment_store = ExperimentStore(backend)
    return opened


def close_experiment_store(app: FastAPI) -> None:
    opened: ExperimentStore | None = getattr(app.state, "experiment_store", None)
    if opened is not None:
        opened.close()
        app.state.experiment_store = None


def _audit(entry: AuditEntry) -> AuditOut:
    return AuditOut(**entry.as_dict())


def _out(stored: StoredExperiment, audit: list[AuditEntry] | None = None) -> ExperimentOut:
    return ExperimentOut(
        experiment=stored.experiment,
        version=stored.version,
        created_at=stored.created_at.isoformat(),
        updated_at=stored.updated_at.isoformat(),
        audit=None if audit is None else [_audit(entry) for entry in audit],
    )


def _actor(request: Request) -> str:
    key_id = getattr(request.state, "key_id", None)
    return f"key:{key_id}" if key_id else "api"


async def _call(function: Any, *arguments: Any, **keywords: Any) -> Any:
    """A store call off the loop, its refusals as the API's errors."""
    try:
        return await run_in_threadpool(function, *arguments, **keywords)
    except InvalidDefinition as error:
        raise _invalid(error) from None
    except ExperimentNotFound as error:
        raise ApiError(404, "unknown_experiment", str(error)) from None
    except ExperimentConflict as error:
        raise ApiError(409, "experiment_conflict", str(error)) from None
    except NothingToAnalyze as error:
        raise ApiError(409, error.code, str(error)) from None
    except StoreUnavailable as error:
        raise ApiError(503, "store_unavailable", f"experiment store: {error}") from None


def _invalid(error: InvalidDefinition) -> ApiError:
    details = [{"field": field, "message": message} for field, message in error.problems]
    return ApiError(422, "invalid_definition", str(error), details=details)


@router.get(
    "/v1/experiments",
    response_model=ExperimentsOut,
    summary="Every experiment, by key",
    dependencies=[Depends(require("read"))],
)
async def list_experiments(
    request: Request,
    status: Annotated[Status | None, Query(description="One status.")] = None,
) -> Any:
    store = await _call(experiment_store, request.app)
    rows = await _call(store.list, status=status)
    return ExperimentsOut(experiments=[_out(row) for row in rows])


@router.get(
    "/v1/experiments/{key}",
    response_model=ExperimentOut,
    summary="One experiment, with its audit trail",
    dependencies=[Depends(require("read"))],
)
async def get_experiment(request: Request, key: Key) -> Any:
    store = await _call(experiment_store, request.app)

    def read() -> ExperimentOut:
        return _out(store.require(key), store.audit(key))

    return await _call(read)


def _definition(request: Request, key: str, body: Any) -> Experiment:
    """The body checked whole, the variants' models against the registry."""
    if not isinstance(body, dict):
        raise InvalidDefinition([("", "send one experiment as a JSON object")])
    if body.setdefault("key", key) != key:
        raise InvalidDefinition([("key", f"the body's key {body['key']!r} is not {key!r}")])
    state = request.app.state.tastebud
    try:
        registry = open_registry(state.settings, state.stores.artifacts)
    except RegistryError as error:
        raise StoreUnavailable(f"model registry: {error}") from error
    return parse_definition(body, state.settings, registry)


@router.put(
    "/v1/experiments/{key}",
    response_model=ExperimentOut,
    summary="Create or change an experiment's definition",
    dependencies=[Depends(require("admin"))],
    responses={201: {"model": ExperimentOut, "description": "Created (a new draft)."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Experiment"}}
            },
        }
    },
)
async def put_experiment(
    request: Request, key: Key, note: Annotated[str, Query(max_length=2_000)] = ""
) -> Any:
    body = await read_json(request, request.app.state.tastebud.settings.gateway.max_body_bytes)
    experiment = await _call(_definition, request, key, body)
    store = await _call(experiment_store, request.app)
    existed = await _call(store.get, key) is not None
    stored = await _call(store.put, experiment, actor=_actor(request), note=note)
    return JSONResponse(_out(stored).model_dump(mode="json"), status_code=200 if existed else 201)


async def _set_status(request: Request, key: str, status: Status, note: str) -> ExperimentOut:
    store = await _call(experiment_store, request.app)
    return _out(await _call(store.set_status, key, status, actor=_actor(request), note=note))


@router.post(
    "/v1/experiments/{key}/start",
    response_model=ExperimentOut,
    summary="Start a draft (a stopped experiment cannot start again)",
    dependencies=[Depends(require("admin"))],
)
async def start(request: Request, key: Key, body: ChangeIn | None = None) -> Any:
    return await _set_status(request, key, "running", (body or ChangeIn()).note)


@router.post(
    "/v1/experiments/{key}/pause",
    response_model=ExperimentOut,
    summary="Pause the experiment, or one variant (its users get control)",
    dependencies=[Depends(require("admin"))],
)
async def pause(request: Request, key: Key, body: PauseIn | None = None) -> Any:
    body = body or PauseIn()
    if body.variant is None:
        return await _set_status(request, key, "paused", body.note)
    store = await _call(experiment_store, request.app)
    actor = _actor(request)
    reason = body.note or f"paused by {actor}"
    return _out(await _call(store.pause_variant, key, body.variant, reason, actor=actor))


@router.post(
    "/v1/experiments/{key}/resume",
    response_model=ExperimentOut,
    summary="Resume after a person's review (reviewed_by and note are required)",
    dependencies=[Depends(require("admin"))],
)
async def resume(request: Request, key: Key, body: ResumeIn) -> Any:
    store = await _call(experiment_store, request.app)
    stored = await _call(
        store.resume, key, reviewed_by=body.reviewed_by, note=body.note, variant=body.variant
    )
    return _out(stored)


@router.post(
    "/v1/experiments/{key}/stop",
    response_model=ExperimentOut,
    summary="Stop for good",
    dependencies=[Depends(require("admin"))],
)
async def stop(request: Request, key: Key, body: ChangeIn | None = None) -> Any:
    return await _set_status(request, key, "stopped", (body or ChangeIn()).note)


@router.get(
    "/v1/experiments/{key}/analysis",
    response_model=Analysis,
    summary="One experiment's analysis: lifts with intervals, sample ratio, guardrails, decision",
    dependencies=[Depends(require("read"))],
    responses={409: {"description": "Nothing to analyze yet (`no_exposures`)."}},
)
async def analysis(request: Request, key: Key) -> Any:
    store = await _call(experiment_store, request.app)
    state = request.app.state.tastebud
    service = getattr(request.app.state, "recommendations", None)
    log = service.experiments.exposures if service is not None else None

    def analyze() -> Analysis:
        if log is not None:  # what this worker served so far is counted too
            try:
                log.flush()
            except Exception as error:  # kept queued for the writer; analyse what is stored
                log_line.warning("exposure_flush_failed", error=f"{type(error).__name__}: {error}")
        return analyze_stored(state.settings, state.stores, store, key, exposures=log)

    return await _call(analyze)
