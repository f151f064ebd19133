"""``POST /v1/features``: feature values for given entities, as serving reads them.

Unknown features and entity types come back listed, values the stores lack come back as
``null`` and listed under ``missing``; an online store that is down falls back to the
offline store (counted), never to an error. Invalid JSON is a 400, a body of the wrong
shape a 422 naming the field.

The feature store opens on first use from the app's settings and online store
(``app.state.tastebud``) and is closed by ``close_feature_store(app)`` at shutdown.
"""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tastebud.api.errors import ApiError
from tastebud.api.strict_json import StrictJsonRoute
from tastebud.features.serving import FeatureService
from tastebud.features.store import FeatureStore, open_feature_store
from tastebud.features.views import ManifestError
from tastebud.schemas import ExternalId, StorableText

MAX_ENTITIES = 1_000
MAX_FEATURES = 500
_lock = threading.Lock()

EntityId = ExternalId
FeatureName = Annotated[StorableText, StringConstraints(min_length=1, max_length=200)]
EntityType = Annotated[StorableText, StringConstraints(min_length=1, max_length=64)]

EXAMPLE = {
    "entities": {"user": ["u42"], "item": ["i7", "i9"]},
    "features": [
        "user_engagement:events_7d",
        "user_category_affinity:top_categories",
        "item_popularity:popularity_score",
        "item_freshness:*",
    ],
}


class FeaturesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    entities: dict[EntityType, list[EntityId]] = Field(
        description='Entity ids by entity type ("user", "item").'
    )
    features: list[FeatureName] = Field(
        min_length=1,
        max_length=MAX_FEATURES,
        description="References `view:feature`, or `view:*` for all of a view's features.",
    )


class MissingFeature(BaseModel):
    entity: str
    entity_id: str
    feature: str


class FeaturesResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "values": {
                        "user": {"u42": {"user_engagement:events_7d": 12}},
                        "item": {
                            "i7": {"item_popularity:popularity_score": 31.5},
                            "i9": {"item_popularity:popularity_score": None},
                        },
                    },
                    "missing": [
                        {
                            "entity": "item",
                            "entity_id": "i9",
                            "feature": "item_popularity:popularity_score",
                        }
                    ],
                    "unknown_features": [],
                    "unknown_entities": [],
                    "fallbacks": 1,
                }
            ]
        }
    )

    values: dict[str, dict[str, dict[str, Any]]] = Field(
        description="values[entity][entity_id][feature]; null where no value is known."
    )
    missing: list[MissingFeature]
    unknown_features: list[str] = Field(description="References no registered view has.")
    unknown_entities: list[str] = Field(description="Entity types no view describes.")
    fallbacks: int = Field(description="Values the online store lacked (offline was asked).")


def feature_store(app: FastAPI) -> FeatureStore:
    """The app's feature store, opened on first use (one per worker process)."""
    opened: FeatureStore | None = getattr(app.state, "features", None)
    if opened is not None:
        return opened
    with _lock:
        opened = getattr(app.state, "features", None)
        if opened is None:
            state = app.state.tastebud
            try:
                opened = open_feature_store(state.settings, state.stores.online)
            except ManifestError as error:
                raise ApiError(503, "features_unavailable", f"feature registry: {error}") from None
            app.state.features = opened
    return opened


def close_feature_store(app: FastAPI) -> None:
    opened: FeatureStore | None = getattr(app.state, "features", None)
    if opened is not None:
        opened.close()
        app.state.features = None


def _lookup_limiter(app: FastAPI) -> anyio.CapacityLimiter:
    """Lookups run off the event loop (a hung Redis must not stall the worker), but on at most
    two threads: on the default pool of 40, threads fighting over the GIL made p95 at 500
    requests/s 30 ms instead of 4 ms (docs/benchmarks.md). One limiter per app, created on
    the app's event loop by its first request."""
    limiter: anyio.CapacityLimiter | None = getattr(app.state, "feature_lookups", None)
    if limiter is None:
        limiter = app.state.feature_lookups = anyio.CapacityLimiter(2)
    return limiter


router = APIRouter(tags=["features"], route_class=StrictJsonRoute)


@router.post("/v1/features", response_model=FeaturesResponse)
async def post_features(
    request: Request,
    body: Annotated[FeaturesRequest, Body(openapi_examples={"ranking": {"value": EXAMPLE}})],
) -> Response:
    """Feature values for the given entities, from the online store (offline fallback)."""
    total = sum(len(ids) for ids in body.entities.values())
    if total > MAX_ENTITIES:
        raise ApiError(
            422, "too_many_entities", f"{total} entities; at most {MAX_ENTITIES} per request"
        )
    service: FeatureService = feature_store(request.app).service
    result = await anyio.to_thread.run_sync(
        service.get_online_features,
        body.entities,
        body.features,
        limiter=_lookup_limiter(request.app),
    )
    # Encoded directly: re-validating the documented response model costs more than the
    # lookup itself on a 21-entity request (the shape is FeaturesResponse all the same).
    document = {
        "values": result.values,
        "missing": result.missing,
        "unknown_features": result.unknown_features,
        "unknown_entities": result.unknown_entities,
        "fallbacks": result.fallbacks,
    }
    return Response(json.dumps(document, separators=(",", ":")), media_type="application/json")
