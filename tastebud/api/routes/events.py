"""``POST /v1/events``: one event or ``{"events": [...]}``, answered per event."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tastebud.api.deps import IngestKey, State, read_json
from tastebud.api.errors import ApiError, error_body
from tastebud.api.schemas import (
    EVENT_EXAMPLE,
    EventsResponse,
    RejectedEventsResponse,
    error_responses,
)
from tastebud.gateway.enrichment import RequestContext
from tastebud.gateway.ingestion import Caller, EventOutcome
from tastebud.schemas import DuplicateKeys

router = APIRouter(tags=["events"])


def split_events(body: Any, max_events: int) -> list[Any]:
    """One event (an object without ``events``) or a batch (``{"events": [...]}``)."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "invalid_body",
            'the body must be one event (a JSON object) or {"events": [...]}',
        )
    if "events" not in body:
        return [body]  # one event: a key it names twice rejects it (``duplicate_key``)
    if isinstance(body, DuplicateKeys):
        raise ApiError(400, "duplicate_key", f"the body names {body.duplicate!r} more than once")
    events = body["events"]
    if len(body) != 1 or not isinstance(events, list):
        raise ApiError(
            400, "invalid_body", 'a batch is {"events": [...]}, with no other top-level field'
        )
    if not events:
        raise ApiError(400, "empty_batch", "the batch has no events")
    if len(events) > max_events:
        raise ApiError(
            413,
            "batch_too_large",
            f"a batch holds at most {max_events} events; this one has {len(events)}",
        )
    return events


def _results(outcomes: list[EventOutcome]) -> dict[str, Any]:
    """The EventsResponse document, built as plain dicts (a model per event costs more than
    the rest of the response)."""
    counts = Counter(outcome.status for outcome in outcomes)
    return {
        "accepted": counts["accepted"],
        "duplicates": counts["duplicate"],
        "rejected": counts["rejected"],
        "results": [
            {
                "index": outcome.index,
                "status": outcome.status,
                "event_id": outcome.event_id,
                "reasons": outcome.reasons,
                "message": outcome.message,
                "dead_letter_id": outcome.dead_letter_id,
            }
            for outcome in outcomes
        ],
    }


@router.post(
    "/v1/events",
    status_code=202,
    response_model=EventsResponse,
    summary="Send feedback events",
    description=(
        'One event, or `{"events": [...]}` with up to the configured batch size (1,000 by '
        "default). Answered 202 once every accepted event is durable in the event store, "
        "with one result per event: `accepted`, `duplicate` (its `event_id` was stored "
        "before, or repeats an earlier event of the request) or `rejected` with reason codes "
        "(rejected events are kept in the dead-letter queue). Good events of a mixed batch "
        "are stored. 422 when no event could be accepted. An event without `timestamp` is "
        "dated when the request arrived, unless `events.require_timestamp` is set. An event "
        "a served list led to should carry that list's `list_id` (from the recommendations "
        "response) as `context.list_id`: experiment analysis attributes it to that list."
    ),
    responses={
        422: {
            "model": RejectedEventsResponse,
            "description": "No event was valid; each one's reasons are listed.",
        },
        **error_responses(400, 401, 403, 413, 415, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/EventIn"},
                            {"$ref": "#/components/schemas/EventBatchIn"},
                        ]
                    },
                    "examples": {
                        "one": {"summary": "One event", "value": EVENT_EXAMPLE},
                        "batch": {"summary": "A batch", "value": {"events": [EVENT_EXAMPLE]}},
                    },
                }
            },
        }
    },
)
async def post_events(request: Request, state: State, key: IngestKey) -> Any:
    body = await read_json(request, state.settings.gateway.max_body_bytes)
    payloads = split_events(body, state.settings.gateway.max_batch_events)
    context = RequestContext(
        user_agent=request.headers.get("user-agent"),
        accept_language=request.headers.get("accept-language"),
        received_at=datetime.now(UTC),
    )
    caller = Caller(
        key_id=key.key_id if key else None, request_id=getattr(request.state, "request_id", None)
    )
    outcomes = await run_in_threadpool(state.gateway.ingest, payloads, context, caller)
    document = _results(outcomes)
    if document["accepted"] == 0 and document["duplicates"] == 0:
        stored_later = any(o.reasons == ["store_unavailable"] for o in outcomes)
        if not stored_later:
            document.update(
                error_body(
                    "invalid_events",
                    "no event in the request is valid; see each result's reasons",
                    request,
                )
            )
            return JSONResponse(document, status_code=422)
    return JSONResponse(document, status_code=202)
