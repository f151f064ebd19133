"""``GET /v1/users`` and ``GET /v1/users/{id}/events``: who the users are and what a user did
lately, with each item's title, creator and categories (``read`` scope). The dashboard's
explorer shows them beside the user's list; the event store and catalog answer, nothing is
ranked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from tastebud.api.errors import ApiError
from tastebud.schemas import ExternalId
from tastebud.stores import StoreUnavailable
from tastebud.stores.base import EventQuery

router = APIRouter(tags=["catalog"])
MAX_LIMIT = 500


class UsersOut(BaseModel):
    users: list[str] = Field(description="User ids in id order, after `after`.")
    total: int = Field(description="Users in the catalog.")


class HistoryEvent(BaseModel):
    event_type: str
    timestamp: str
    item_id: str
    value: float | None
    title: str | None
    creator: str | None
    categories: list[str]


class HistoryOut(BaseModel):
    user_id: str
    known: bool = Field(description="False when the catalog has no such user.")
    events: list[HistoryEvent] = Field(description="Newest first.")


def _stores(request: Request) -> Any:
    return request.app.state.tastebud.stores


async def _off_loop(function: Any, *arguments: Any) -> Any:
    try:
        return await run_in_threadpool(function, *arguments)
    except StoreUnavailable as error:
        raise ApiError(503, "store_unavailable", str(error)) from None


@router.get("/v1/users", response_model=UsersOut, summary="List user ids")
async def list_users(
    request: Request,
    after: Annotated[ExternalId | None, Query(description="Only ids after this one.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> Any:
    catalog = _stores(request).catalog

    def read() -> UsersOut:
        users = catalog.list_users(after=after, limit=limit)
        return UsersOut(users=[user.user_id for user in users], total=catalog.count_users())

    return await _off_loop(read)


def _history(stores: Any, user_id: str, limit: int) -> HistoryOut:
    events = stores.events.scan(EventQuery(user_ids=[user_id], order="desc", limit=limit))
    items = stores.catalog.get_items(sorted({event.item_id for event in events}))
    known = bool(events) or stores.catalog.get_user(user_id) is not None
    out = []
    for event in events:
        item = items.get(event.item_id)
        out.append(
            HistoryEvent(
                event_type=event.event_type,
                timestamp=event.timestamp.isoformat(),
                item_id=event.item_id,
                value=event.value,
                title=item.title if item else None,
                creator=item.creator if item else None,
                categories=list(item.categories) if item else [],
            )
        )
    return HistoryOut(user_id=user_id, known=known, events=out)


@router.get(
    "/v1/users/{user_id:path}/events",
    response_model=HistoryOut,
    summary="A user's recent events, newest first, with item metadata",
)
async def user_events(
    request: Request,
    user_id: Annotated[ExternalId, Path()],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> Any:
    return await _off_loop(_history, _stores(request), user_id, limit)
