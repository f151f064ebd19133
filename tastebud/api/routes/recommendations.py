"""Recommendation routes (``read`` scope): a user's list, a batch or an anonymous session's
list, similar items and the popular list.

Documented fallbacks, never errors: an unknown user gets the popular and trending list; a
store that is down gives a list marked ``"degraded": true``. Errors (JSON, ``{"error":
{"code", "message"}}``): k outside 1..``serving.max_k`` and malformed parameters are 422,
an unknown category 404 ``unknown_category``, an unknown item 404 ``unknown_item``.
Ranking runs off the event loop, on at most two threads per worker (as feature lookups do);
a precomputed list is looked up on the loop when the online store's reads are local.

Experiments (``tastebud.api.variants``): each list is served under the unit's variant (the
user id; for an anonymous session, its ``session_id``) and says which (``experiment``,
``variant``); every list gets a new ``list_id`` and is logged as an exposure.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
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
from tastebud.api.lists import expose, served_document, stored_response
from tastebud.api.strict_json import StrictJsonRoute
from tastebud.api.variants import VARIANT_HEADER, VariantPair, forced_variant, plan_of
from tastebud.ranking.experiment_serving import Plan
from tastebud.ranking.pipeline import RankRequest
from tastebud.ranking.recommender import (
    RecommendationService,
    UnknownCategory,
    UnknownItem,
)
from tastebud.ranking_config import RankingSettings
from tastebud.schemas import ExternalId, JsonInt, StorableText, active_rules, check_id

MAX_EXCLUDE = 1_000
Id = ExternalId
Category = Annotated[StorableText, StringConstraints(min_length=1, max_length=128)]


METADATA_DESCRIPTION = (
    "Add each item's catalog `title` and `creator` (null when the catalog has none); "
    "`metadata=false` leaves them out."
)
SESSION_DESCRIPTION = (
    "The client's session or device id: an anonymous session (`recent_items`) is assigned "
    "its experiment variant by it; it is kept with each list's exposure."
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
    experiment: str | None = Field(
        default=None, description="The experiment the list was served under (null: none)."
    )
    variant: str | None = Field(
        default=None, description="The experiment's variant the list was served under."
    )
    list_id: str = Field(
        description="This list's id, new per served list: send it back as `context.list_id` "
        "on the events the list leads to (exact attribution)."
    )


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
    session_id: Id | None = Field(default=None, description=SESSION_DESCRIPTION)
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


def _json(document: Any) -> Response:
    return Response(json.dumps(document, separators=(",", ":")), media_type="application/json")


def _unknown_category(error: UnknownCategory) -> ApiError:
    # 404, as for an unknown item: the category is well-formed, there is just none such.
    return ApiError(404, "unknown_category", f"no catalog item is in category {error.args[0]!r}")


router = APIRouter(tags=["recommendations"], route_class=StrictJsonRoute)


@router.get(
    "/v1/users/{user_id:path}/recommendations",
    response_model=RecommendationsResponse,
)
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
    session_id: Annotated[Id | None, Query(description=SESSION_DESCRIPTION)] = None,
    variant: Annotated[VariantPair | None, VARIANT_HEADER] = None,
) -> Response:
    """A user's ranked list; an unknown user gets the popular and trending list."""
    started = time.perf_counter()
    service = service_of(request.app)
    _check_k(service, k)
    excluded = _split_ids(exclude or [])
    rank_request = RankRequest(k=k, category=category or None, exclude=excluded, explain=explain)
    plan = plan_of(service, user_id, forced_variant(request, variant))
    ranking, snapshot = plan.ranking, plan.snapshot
    looked_up = None
    if service.inline_lookups:
        looked_up = service.lookup(user_id, rank_request, ranking=ranking, snapshot=snapshot)
    if looked_up is not None:  # answered on the loop only when nothing needs ranking
        stored = looked_up.stored
        if stored is not None and explain and metadata:
            list_id = expose(
                service,
                plan,
                started,
                user_id,
                session_id,
                stored.item_ids,
                stored.model_version,
                degraded=False,
            )
            return stored_response(user_id, stored, plan, list_id)
        if looked_up.served is not None:
            served = looked_up.served
            return _json(
                served_document(
                    service, plan, started, user_id, session_id, served, metadata=metadata
                )
            )
    try:
        served = await anyio.to_thread.run_sync(
            lambda: service.recommend(
                user_id, rank_request, ranking=ranking, snapshot=snapshot, looked_up=looked_up
            ),
            limiter=_limiter(request.app),
        )
    except UnknownCategory as error:
        raise _unknown_category(error) from None
    return _json(
        served_document(service, plan, started, user_id, session_id, served, metadata=metadata)
    )


def _invalid_ranking(error: ValidationError) -> ApiError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
    )
    return ApiError(422, "invalid_ranking", f"ranking overrides: {problems}")


def _batch_plan(
    service: RecommendationService,
    unit: str | None,
    forced: tuple[str, str] | None,
    overrides: dict[str, Any] | None,
    ranking: RankingSettings,
) -> tuple[Plan, RankingSettings | None]:
    """A batch entry's plan and ranking settings: the request's overrides go on top of the
    variant's, and then the list is not counted (it is not the variant as designed)."""
    plan = plan_of(service, unit, forced)
    if not overrides:
        return plan, plan.ranking
    try:
        settings = (plan.ranking or service.settings.ranking).with_overrides(overrides)
    except ValidationError as error:
        raise _invalid_ranking(error) from None
    return replace(plan, counted=False), settings


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


@router.post(
    "/v1/recommendations",
    response_model=BatchResponse,
    description="Lists for many users at once, or for an anonymous session given its recent "
    "items (assigned its experiment variant by `session_id`). `ranking` overrides the "
    "configured ranking settings for this request only, on top of an experiment variant's "
    "(such a list is reported under its variant but not counted).",
)
async def post_recommendations(
    request: Request,
    body: BatchRequest,
    variant: Annotated[VariantPair | None, VARIANT_HEADER] = None,
) -> Response:
    """Lists for many users at once, or for an anonymous session given its recent items.
    ``ranking`` overrides the configured ranking settings for this request only (on top of
    an experiment variant's; such a list is reported under its variant but not counted)."""
    started = time.perf_counter()
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
        raise _invalid_ranking(error) from None
    rank_request = RankRequest(
        k=body.k, category=body.category, exclude=frozenset(body.exclude), explain=body.explain
    )
    forced = forced_variant(request, variant)
    anonymous = body.recent_items is not None
    units = [body.session_id] if anonymous else list(body.users or [])
    plans = [_batch_plan(service, unit, forced, body.ranking, ranking) for unit in units]

    def run() -> list[dict[str, Any]]:
        results = []
        for unit, (plan, settings) in zip(units, plans, strict=True):
            user = None if anonymous else unit
            at = started if not results else time.perf_counter()
            served = service.recommend(
                user,
                rank_request,
                session_items=body.recent_items or (),
                ranking=settings,
                snapshot=plan.snapshot,
            )
            results.append(
                served_document(
                    service, plan, at, user, body.session_id, served, metadata=body.metadata
                )
            )
        return results

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
