"""Recommendation routes (``read`` scope): a user's list, a batch or an anonymous session's
list, similar items and the popular list.

Documented fallbacks, never errors: an unknown user gets the popular and trending list; a
store that is down gives a list marked ``"degraded": true``. Errors (JSON, ``{"error":
{"code", "message"}}``): k outside 1..``serving.max_k`` and malformed parameters are 422,
an unknown category 404 ``unknown_category``, an unknown item 404 ``unknown_item``.
Ranking runs off the event loop, on at most two threads per worker (as feature lookups do);
a precomputed list is looked up on the loop when the online store's reads are local.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from tastebud.api.errors import ApiError
from tastebud.api.strict_json import StrictJsonRoute
from tastebud.ranking.pipeline import RankRequest
from tastebud.ranking.precomputed import PrecomputedList, item_document
from tastebud.ranking.recommender import (
    RecommendationService,
    Served,
    UnknownCategory,
    UnknownItem,
)
from tastebud.schemas import ExternalId, JsonInt, StorableText, active_rules, check_id

MAX_EXCLUDE = 1_000
Id = ExternalId
Category = Annotated[StorableText, StringConstraints(min_length=1, max_length=128)]


METADATA_DESCRIPTION = (
    "Add each item's catalog `title` and `creator` (null when the catalog has none); "
    "`metadata=false` leaves them out."
)


class RecommendedItem(BaseModel):
    item_id: str
    score: float = Field(description="Blended relevance plus recency boost (higher is better).")
    sources: list[str] = Field(description="Where it came from: cf, content, trending, ...")
    explanation: str | None = Field(description='Why, e.g. "because you played X".')
    title: str | None = Field(default=None, description="Catalog title (not with metadata=false).")
    creator: str | None = Field(
        default=None, description="Artist, brand, director (not with metadata=false)."
    )


class ListedItem(BaseModel):
    """An item of the similar and popular lists."""

    model_config = ConfigDict(extra="allow")

    item_id: str
    title: str | None = Field(default=None, description="Catalog title (not with metadata=false).")
    creator: str | None = Field(
        default=None, description="Artist, brand, director (not with metadata=false)."
    )


class RecommendationsResponse(BaseModel):
    user_id: str | None
    items: list[RecommendedItem]
    model_version: str | None = Field(description="The registry version that ranked the list.")
    degraded: bool = Field(description="True when a store was down and a fallback answered.")
    degraded_reasons: list[str]
    segment: str = Field(description="warm, cold (few interactions) or unknown (none).")


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"users": ["u1", "u2"], "k": 10},
                {"recent_items": ["i7", "i9"], "k": 10, "explain": False},
            ]
        },
    )

    users: list[Id] | None = Field(default=None, description="Users to rank for.")
    recent_items: list[Id] | None = Field(
        default=None, max_length=200, description="An anonymous session's recent items."
    )
    k: JsonInt = Field(default=20, ge=1)  # "k": true is not 1
    category: Category | None = None
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_EXCLUDE)
    explain: StrictBool = True
    metadata: StrictBool = Field(default=True, description=METADATA_DESCRIPTION)
    ranking: dict[str, Any] | None = Field(
        default=None,
        description='Overrides of the [ranking] settings, e.g. {"mmr": {"diversity": 0.5}}.',
    )


class BatchResponse(BaseModel):
    results: list[RecommendationsResponse]


class SimilarResponse(BaseModel):
    item_id: str
    items: list[ListedItem] = Field(description="With score and sources (cf, content).")
    model_version: str | None


class PopularResponse(BaseModel):
    category: str | None
    items: list[ListedItem] = Field(description="With rank (1 is the most popular).")
    degraded: bool


def service_of(app: FastAPI) -> RecommendationService:
    service: RecommendationService | None = getattr(app.state, "recommendations", None)
    if service is None:
        raise ApiError(503, "serving_unavailable", "the recommendation service is starting")
    return service


def _limiter(app: FastAPI) -> anyio.CapacityLimiter:
    limiter: anyio.CapacityLimiter | None = getattr(app.state, "ranking_threads", None)
    if limiter is None:
        limiter = app.state.ranking_threads = anyio.CapacityLimiter(2)
    return limiter


def _check_k(service: RecommendationService, k: int) -> None:
    limit = service.serving.max_k
    if not 1 <= k <= limit:
        raise ApiError(422, "invalid_k", f"k must be between 1 and {limit}; got {k}")


def _document(user_id: str | None, served: Served, *, metadata: bool = True) -> dict[str, Any]:
    ranked = served.ranked
    return {
        "user_id": user_id,
        "items": [item_document(item, metadata=metadata) for item in ranked.items],
        "model_version": ranked.model_version,
        "degraded": bool(served.degraded),
        "degraded_reasons": sorted(set(served.degraded)),
        "segment": ranked.segment,
    }


def _stored_response(user_id: str, stored: PrecomputedList) -> Response:
    """A precomputed list's answer (``_document``'s fields): its items array goes out as
    the job encoded it, unparsed."""
    head = {
        "user_id": user_id,
        "model_version": stored.model_version,
        "degraded": False,
        "degraded_reasons": [],
        "segment": stored.segment,
    }
    body = json.dumps(head, separators=(",", ":")).encode()[:-1]
    body += b',"items":' + stored.items_json + b"}"
    return Response(body, media_type="application/json")


def _json(document: Any) -> Response:
    return Response(json.dumps(document, separators=(",", ":")), media_type="application/json")


def _unknown_category(error: UnknownCategory) -> ApiError:
    # 404, as for an unknown item: the category is well-formed, there is just none such.
    return ApiError(404, "unknown_category", f"no catalog item is in category {error.args[0]!r}")


router = APIRouter(tags=["recommendations"], route_class=StrictJsonRoute)


@router.get("/v1/users/{user_id:path}/recommendations", response_model=RecommendationsResponse)
async def get_recommendations(
    request: Request,
    user_id: Annotated[Id, Path()],
    k: Annotated[int, Query(description="How many items (1..serving.max_k).")] = 20,
    category: Annotated[Category | None, Query(description="Only this category.")] = None,
    exclude: Annotated[
        list[str] | None,
        Query(description="Item ids never to return (repeat, or separate with commas)."),
    ] = None,
    explain: Annotated[bool, Query(description="Add a short reason per item.")] = True,
    metadata: Annotated[bool, Query(description=METADATA_DESCRIPTION)] = True,
) -> Response:
    """A user's ranked list; an unknown user gets the popular and trending list."""
    service = service_of(request.app)
    _check_k(service, k)
    excluded = _split_ids(exclude or [])
    rank_request = RankRequest(k=k, category=category or None, exclude=excluded, explain=explain)
    looked_up = service.lookup(user_id, rank_request) if service.inline_lookups else None
    if looked_up is not None:  # answered on the loop only when nothing needs ranking
        if looked_up.stored is not None and explain and metadata:
            return _stored_response(user_id, looked_up.stored)
        if looked_up.served is not None:
            return _json(_document(user_id, looked_up.served, metadata=metadata))
    try:
        served = await anyio.to_thread.run_sync(
            lambda: service.recommend(user_id, rank_request, looked_up=looked_up),
            limiter=_limiter(request.app),
        )
    except UnknownCategory as error:
        raise _unknown_category(error) from None
    return _json(_document(user_id, served, metadata=metadata))


def _split_ids(values: list[str]) -> frozenset[str]:
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if len(ids) > MAX_EXCLUDE:
        raise ApiError(422, "too_many_excluded", f"at most {MAX_EXCLUDE} excluded items")
    rules = active_rules()
    for item_id in ids:
        try:
            check_id(item_id, "exclude", rules)
        except PydanticCustomError as error:
            raise ApiError(422, error.type, error.message()) from None
    return frozenset(ids)


@router.post("/v1/recommendations", response_model=BatchResponse)
async def post_recommendations(request: Request, body: BatchRequest) -> Response:
    """Lists for many users at once, or for an anonymous session given its recent items.
    ``ranking`` overrides the configured ranking settings for this request only."""
    service = service_of(request.app)
    _check_k(service, body.k)
    if (body.users is None) == (body.recent_items is None):
        raise ApiError(
            422, "invalid_request", "give either `users` or `recent_items` (an anonymous session)"
        )
    if body.users is not None and not 1 <= len(body.users) <= service.serving.max_batch_users:
        raise ApiError(
            422,
            "invalid_users",
            f"`users` must hold 1 to {service.serving.max_batch_users} user ids",
        )
    try:
        ranking = service.settings.ranking.with_overrides(body.ranking)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
        )
        raise ApiError(422, "invalid_ranking", f"ranking overrides: {problems}") from None
    rank_request = RankRequest(
        k=body.k, category=body.category, exclude=frozenset(body.exclude), explain=body.explain
    )

    def run() -> list[dict[str, Any]]:
        if body.recent_items is not None:
            served = service.recommend(
                None, rank_request, session_items=body.recent_items, ranking=ranking
            )
            return [_document(None, served, metadata=body.metadata)]
        return [
            _document(
                user,
                service.recommend(user, rank_request, ranking=ranking),
                metadata=body.metadata,
            )
            for user in body.users or []
        ]

    try:
        results = await anyio.to_thread.run_sync(run, limiter=_limiter(request.app))
    except UnknownCategory as error:
        raise _unknown_category(error) from None
    return _json({"results": results})


@router.get("/v1/items/{item_id:path}/similar", response_model=SimilarResponse)
async def get_similar(
    request: Request,
    item_id: Annotated[Id, Path()],
    k: Annotated[int, Query(description="How many items (1..serving.max_k).")] = 20,
    metadata: Annotated[bool, Query(description=METADATA_DESCRIPTION)] = True,
) -> Response:
    """Items like this one: CF neighbours blended with content neighbours; an item no one
    has interacted with yet gets its content neighbours."""
    service = service_of(request.app)
    _check_k(service, k)
    try:
        items, version = await anyio.to_thread.run_sync(
            service.similar, item_id, k, limiter=_limiter(request.app)
        )
    except UnknownItem:
        raise ApiError(404, "unknown_item", f"no item {item_id!r} is known") from None
    if metadata:
        service.describe_items(items)
    return _json({"item_id": item_id, "items": items, "model_version": version})


@router.get("/v1/popular", response_model=PopularResponse)
async def get_popular(
    request: Request,
    category: Annotated[Category | None, Query()] = None,
    k: Annotated[int, Query(description="How many items (1..serving.max_k).")] = 20,
    metadata: Annotated[bool, Query(description=METADATA_DESCRIPTION)] = True,
) -> Response:
    """The popular list (published by the popularity job; the model's when none is)."""
    service = service_of(request.app)
    _check_k(service, k)
    try:
        items, degraded = await anyio.to_thread.run_sync(
            service.popular, category or None, k, limiter=_limiter(request.app)
        )
    except UnknownCategory as error:
        raise _unknown_category(error) from None
    if metadata:
        service.describe_items(items)
    return _json({"category": category, "items": items, "degraded": bool(degraded)})
