"""Predicted ratings (``read`` scope): ``GET /v1/users/{id}/ratings?items=a,b,c``.

Answered by the serving model when it predicts ratings (``tastebud train --objective
rating``). A user or item the model never saw is answered, not refused: the global mean
plus whichever bias is known, with ``fallback`` saying which. Errors: malformed, blank,
repeated or too many ``items`` are 422 naming the field; a serving model that predicts no
ratings, or none at all, is 409 ``not_a_rating_model``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from pydantic_core import PydanticCustomError

from tastebud.api.errors import ApiError
from tastebud.api.routes.recommendations import service_of
from tastebud.models.rating import RatingRecommender
from tastebud.schemas import ExternalId, active_rules, check_id

MAX_ITEMS = 500
ITEMS_DESCRIPTION = f"Item ids to predict, separated by commas (at most {MAX_ITEMS})."

Fallback = Literal["global_mean", "item_bias", "user_bias"]


class PredictedRating(BaseModel):
    item_id: str
    rating: float = Field(description="Predicted rating, clipped to the training scale.")
    known_item: bool = Field(description="False: the model never saw this item.")
    fallback: Fallback | None = Field(
        description="null when user and item are known; else what the rating rests on: "
        "global_mean (neither known), item_bias (unknown user), user_bias (unknown item)."
    )


class RatingsResponse(BaseModel):
    user_id: str
    known_user: bool = Field(description="False: the model never saw this user.")
    items: list[PredictedRating]
    model_version: str | None
    rating_scale: list[float] = Field(description="[lowest, highest] rating in training.")


router = APIRouter(tags=["ratings"])


def parse_items(value: str) -> list[str]:
    """Item ids from ``items`` (comma-separated, none blank), checked like every id; the
    OpenAPI schema states the same rule (``openapi_limits``)."""
    ids = [part.strip() for part in value.split(",")]
    if not all(ids):
        raise ApiError(422, "invalid_items", "`items` must be item ids separated by commas")
    if len(ids) > MAX_ITEMS:
        raise ApiError(
            422, "too_many_items", f"`items` may name at most {MAX_ITEMS} items; got {len(ids)}"
        )
    rules = active_rules()
    for item_id in ids:
        try:
            check_id(item_id, "items", rules)
        except PydanticCustomError as error:
            raise ApiError(422, error.type, f"items: {error.message()}") from None
    return ids


def _fallback(known_user: bool, known_item: bool) -> Fallback | None:
    if known_user and known_item:
        return None
    if known_item:
        return "item_bias"
    return "user_bias" if known_user else "global_mean"


@router.get("/v1/users/{user_id:path}/ratings", response_model=RatingsResponse)
async def get_ratings(
    request: Request,
    user_id: Annotated[ExternalId, Path()],
    items: Annotated[str, Query(description=ITEMS_DESCRIPTION)],
) -> RatingsResponse:
    """Predicted ratings of ``items`` by a user; unknown users and items get a fallback."""
    ids = parse_items(items)
    serving = service_of(request.app).snapshot.model
    if serving is None:  # a state to fix by training, as below, not an outage
        raise ApiError(
            409,
            "not_a_rating_model",
            "no model is serving yet; train one with `tastebud train --objective rating` and "
            "promote it",
        )
    model = serving.model
    if not isinstance(model, RatingRecommender):
        raise ApiError(
            409,
            "not_a_rating_model",
            f"the serving model ({model.name}, version {serving.version}) predicts no "
            "ratings; train one with `tastebud train --objective rating` and promote it",
        )
    predicted = await anyio.to_thread.run_sync(model.predict, user_id, ids)
    known_user = bool(predicted.known_user[0])
    return RatingsResponse(
        user_id=user_id,
        known_user=known_user,
        items=[
            PredictedRating(
                item_id=item_id,
                rating=round(float(rating), 4),
                known_item=bool(known),
                fallback=_fallback(known_user, bool(known)),
            )
            for item_id, rating, known in zip(
                ids, predicted.ratings, predicted.known_item, strict=True
            )
        ],
        model_version=serving.version,
        rating_scale=[float(v) for v in model.rating_range_],
    )
