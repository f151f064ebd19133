"""``GET /v1/trending?category=&k=``: the published trending list.

The router does not know the app: the online store comes from the ``online_store``
dependency, which reads ``app.state.tastebud.stores.online`` (the main app's state) or
``app.state.online``; the app may also override it. Mount with
``app.include_router(router, dependencies=[...])`` to add authentication.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from tastebud.schemas import StorableText
from tastebud.stores import OnlineStore, StoreError
from tastebud.trending.lists import NothingPublished, trending_items

MAX_K = 500


class TrendingEntry(BaseModel):
    item_id: str
    score: float = Field(description="z-score of recent engagement against the baseline.")
    lift: float = Field(description="Recent engagement over the expected engagement.")
    rank: int
    title: str | None = Field(default=None, description="Catalog title (not with metadata=false).")
    creator: str | None = Field(
        default=None, description="Artist, brand, director (not with metadata=false)."
    )


class TrendingResponse(BaseModel):
    category: str = Field(description='The category asked for; "*" for all items.')
    as_of: str | None = Field(description="End of the data interval the list describes.")
    computed_at: str | None = Field(description="When the trending job computed it.")
    items: list[TrendingEntry]
    note: str | None = Field(
        default=None,
        description="Why the list is empty: nothing rose enough, or too little data to judge.",
    )


def online_store(request: Request) -> OnlineStore:
    state = request.app.state
    app_state = getattr(state, "tastebud", None)
    if app_state is not None:
        return app_state.stores.online  # type: ignore[no-any-return]
    store = getattr(state, "online", None)
    if store is None:
        raise RuntimeError("mount the trending router on an app that has an online store")
    return store  # type: ignore[no-any-return]


Online = Annotated[OnlineStore, Depends(online_store)]


def describe(request: Request, entries: list[dict[str, Any]]) -> None:
    """Add ``title`` and ``creator`` to each entry: from the ranking service's snapshot when
    the app serves recommendations, else from the catalog store."""
    state = request.app.state
    service = getattr(state, "recommendations", None)
    if service is not None:
        service.describe_items(entries)
        return
    app_state = getattr(state, "tastebud", None)
    items = (
        app_state.stores.catalog.get_items([entry["item_id"] for entry in entries])
        if app_state is not None
        else {}
    )
    for entry in entries:
        item = items.get(entry["item_id"])
        entry["title"] = item.title if item is not None else None
        entry["creator"] = item.creator if item is not None else None


router = APIRouter(tags=["trending"])


@router.get("/v1/trending", response_model=TrendingResponse, response_model_exclude_unset=True)
def get_trending(
    request: Request,
    online: Online,
    category: Annotated[
        StorableText | None, Query(max_length=128, description="A category; omit for all items.")
    ] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")] = 20,
    metadata: Annotated[
        bool,
        Query(description="Add each item's catalog `title` and `creator`; false leaves them out."),
    ] = True,
) -> TrendingResponse:
    """The current trending items, best first, as the last trending run published them."""
    try:
        found = trending_items(online, category or None, k)
    except NothingPublished as error:
        raise HTTPException(404, f"{error}; run `tastebud jobs run trending`") from None
    except StoreError as error:
        raise HTTPException(503, f"online store unavailable: {error}") from None
    if metadata:
        try:
            describe(request, found.items)
        except StoreError as error:
            raise HTTPException(503, f"catalog store unavailable: {error}") from None
    return TrendingResponse(
        category=found.category,
        as_of=found.as_of,
        computed_at=found.computed_at,
        items=[TrendingEntry(**entry) for entry in found.items],
        note=found.note,
    )
