"""Request and response shapes of the HTTP API, separate from the storage models.

Request bodies are read and validated by hand, event by event, so one bad event cannot fail a
batch; the ``*In`` models here document the accepted shape in the OpenAPI schema (see
``app.py``), and the response models are what the routes return.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tastebud.schemas import ExternalId

EVENT_EXAMPLE: dict[str, Any] = {
    "event_id": "evt-2025-03-01-000042",
    "user_id": "u1",
    "item_id": "song-9",
    "event_type": "play",
    "value": 182,
    "timestamp": "2025-03-01T20:15:00Z",
    "context": {"page": "home"},
}


def _id(description: str, *, required: bool = True) -> Any:
    """An ``ExternalId`` field: its length and pattern are the settings' (``api.openapi``)."""
    if required:
        return Field(description=description)
    return Field(default=None, description=description)


class EventIn(BaseModel):
    """One feedback event as a client sends it (schema v2; v1 events, without session,
    device and locale, are accepted and upgraded)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EVENT_EXAMPLE]})

    event_id: ExternalId | None = _id(
        "Idempotency key: a replay is reported as `duplicate` and stored once. When absent, "
        "one is derived from the event's content.",
        required=False,
    )
    user_id: ExternalId = _id("External user id.")
    item_id: ExternalId = _id("External item id.")
    event_type: str = Field(description="A configured event type (play, like, view...).")
    value: float | None = Field(default=None, description="Rating, seconds played, price...")
    timestamp: str | float | None = Field(
        default=None,
        description="ISO-8601 or epoch seconds; stored as UTC. When absent (or null), the "
        "event is dated when the gateway received it, unless `events.require_timestamp` is "
        "set, which rejects it (`missing_field`).",
    )
    session_id: ExternalId | None = _id(
        "Assigned by a per-user inactivity gap when absent.", required=False
    )
    device_type: Literal["web", "mobile", "other"] | None = Field(
        default=None, description="Derived from the User-Agent when absent."
    )
    locale: str | None = Field(
        default=None, max_length=35, description="BCP-47; from Accept-Language when absent."
    )
    schema_version: Literal[1, 2] = 2
    context: dict[str, Any] = Field(
        default_factory=dict, description="A small JSON object (4 KiB by default)."
    )


class EventBatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"events": [EVENT_EXAMPLE, {**EVENT_EXAMPLE}]}]},
    )

    events: list[EventIn] = Field(min_length=1)


class ItemIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "item_id": "song-9",
                    "title": "Blue in Green",
                    "creator": "Miles Davis",
                    "categories": ["jazz"],
                    "attributes": {"tempo": 62},
                }
            ]
        },
    )

    item_id: ExternalId = _id("External item id.")
    title: str | None = None
    creator: str | None = Field(default=None, description="Artist, brand, director.")
    categories: list[str] = Field(default_factory=list)
    created_at: str | float | None = Field(default=None, description="ISO-8601 or epoch.")
    attributes: dict[str, Any] = Field(default_factory=dict)
    active: bool = True


class UserIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": "u1", "attributes": {"country": "FR"}}]},
    )

    user_id: ExternalId = _id("External user id.")
    created_at: str | float | None = Field(default=None, description="ISO-8601 or epoch.")
    attributes: dict[str, Any] = Field(default_factory=dict)


class ItemBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ItemIn] = Field(min_length=1)


class UserBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[UserIn] = Field(min_length=1)


# --- responses ---------------------------------------------------------------------------


class EventResult(BaseModel):
    index: int = Field(description="Position of the event in the request.")
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = None
    reasons: list[str] = Field(
        default_factory=list,
        description="Machine-readable reason codes when rejected (e.g. unknown_event_type, "
        "timestamp_in_future, missing_field, store_unavailable).",
    )
    message: str | None = None
    dead_letter_id: int | None = Field(
        default=None, description="The dead-letter queue entry holding a rejected event."
    )


class EventsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "duplicates": 1,
                    "rejected": 1,
                    "results": [
                        {"index": 0, "status": "accepted", "event_id": "e1", "reasons": []},
                        {"index": 1, "status": "duplicate", "event_id": "e0", "reasons": []},
                        {
                            "index": 2,
                            "status": "rejected",
                            "event_id": "e2",
                            "reasons": ["unknown_event_type"],
                            "message": "event_type: event_type 'jump' is not configured",
                            "dead_letter_id": 17,
                        },
                    ],
                }
            ]
        }
    )

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. malformed_json.")
    message: str
    request_id: str | None = None
    details: Any = None


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": {"code": "malformed_json", "message": "line 1 column 9: Expecting ','"}}
            ]
        }
    )

    error: ErrorBody


class RejectedEventsResponse(EventsResponse):
    """422: no event in the request could be accepted; each one's reasons are listed."""

    error: ErrorBody


class CatalogResult(BaseModel):
    index: int
    status: Literal["upserted", "rejected"]
    id: str | None = None
    reasons: list[str] = Field(default_factory=list)
    message: str | None = None


class CatalogResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "upserted": 1,
                    "rejected": 0,
                    "results": [{"index": 0, "status": "upserted", "id": "song-9", "reasons": []}],
                }
            ]
        }
    )

    upserted: int
    rejected: int
    results: list[CatalogResult]


class RejectedCatalogResponse(CatalogResponse):
    error: ErrorBody


class ItemOut(BaseModel):
    item_id: str
    title: str | None = None
    creator: str | None = None
    categories: list[str] = Field(default_factory=list)
    created_at: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    active: bool = True


class UserOut(BaseModel):
    user_id: str
    created_at: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(
        description="Each store: ok, or its error; `model`: ok, `ok, degraded: ...` (an "
        "earlier version serves in place of the one the alias names), or `no model: ...`."
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, all with the ErrorResponse shape."""
    descriptions = {
        400: "Malformed JSON, invalid UTF-8 or a body of the wrong shape.",
        401: "Missing or unknown API key.",
        403: "The key lacks the scope this route needs.",
        404: "Not found.",
        409: "The request conflicts with the serving state (e.g. the model cannot do it).",
        413: "The body is larger than the configured limit.",
        415: "The body is not JSON.",
        422: "Invalid parameters.",
        429: "Rate limited; see Retry-After.",
        503: "A store is unavailable; nothing was acknowledged. See Retry-After.",
    }
    return {
        status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses
    }
