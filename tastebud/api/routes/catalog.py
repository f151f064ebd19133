"""``PUT /v1/items`` and ``PUT /v1/users`` (batch upserts, per-entry results) and reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from tastebud.api.deps import IngestKey, ReadKey, State, read_json
from tastebud.api.errors import ApiError, error_body
from tastebud.api.schemas import (
    CatalogResponse,
    ItemOut,
    RejectedCatalogResponse,
    UserOut,
    error_responses,
)
from tastebud.config import EventRules
from tastebud.schemas import ExternalId, Item, User, storable
from tastebud.stores import StoreDataError
from tastebud.validation import pydantic_reasons

router = APIRouter(tags=["catalog"])

WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": RejectedCatalogResponse, "description": "No entry was valid."},
    **error_responses(400, 401, 403, 413, 415, 429, 503),
}


def _entries(body: Any, field: str, max_entries: int) -> list[Any]:
    if not isinstance(body, dict) or set(body) != {field} or not isinstance(body[field], list):
        raise ApiError(400, "invalid_body", f'the body must be {{"{field}": [...]}}')
    entries = body[field]
    if not entries:
        raise ApiError(400, "empty_batch", f"{field} is empty")
    if len(entries) > max_entries:
        raise ApiError(
            413, "batch_too_large", f"at most {max_entries} {field} per request; got {len(entries)}"
        )
    return entries


def _validate(
    model: type[Item] | type[User], entries: list[Any], id_field: str, rules: EventRules
) -> tuple[list[Any], list[dict[str, Any]]]:
    valid: list[BaseModel] = []
    results: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        entry_id = entry.get(id_field) if isinstance(entry, dict) else None
        result: dict[str, Any] = {
            "index": index,
            "id": entry_id if isinstance(entry_id, str) and storable(entry_id) else None,
            "reasons": [],
            "message": None,
        }
        if not isinstance(entry, dict):
            result.update(status="rejected", reasons=["invalid_type"], message="not an object")
        else:
            try:
                # Strict: a boolean is a boolean ("active": "yes" or 1 is refused), as the
                # OpenAPI schema says; files go through the loaders, which read text.
                record = model.model_validate(entry, strict=True, context={"rules": rules})
            except TypeError as error:  # a validator met a type it did not expect
                result.update(status="rejected", reasons=["invalid_type"], message=str(error)[:100])
            except ValidationError as error:
                detail = error.errors()[0]
                where = ".".join(str(part) for part in detail["loc"])
                result.update(
                    status="rejected",
                    reasons=list(dict.fromkeys(pydantic_reasons(error))),
                    message=f"{where}: {detail['msg']}" if where else detail["msg"],
                )
            else:
                valid.append(record)
                result.update(status="upserted", id=getattr(record, id_field))
        results.append(result)
    return valid, results


def _store_isolating(
    upsert: Callable[[list[Any]], Any], valid: list[Any], results: list[dict[str, Any]]
) -> list[Any]:
    """Upsert the batch; if the store refuses some entry's data (``StoreDataError``, a gap in
    the text rule), upsert them one by one and reject only the refused ones."""
    try:
        upsert(valid)
        return valid
    except StoreDataError:
        pass
    stored: list[Any] = []
    upserted = [result for result in results if result["status"] == "upserted"]
    for record, result in zip(valid, upserted, strict=True):
        try:
            upsert([record])
        except StoreDataError as error:
            result.update(status="rejected", reasons=["unstorable"], message=str(error)[:200])
        else:
            stored.append(record)
    return stored


async def _upsert(request: Request, state: State, field: str) -> JSONResponse:
    body = await read_json(request, state.settings.gateway.max_body_bytes)
    entries = _entries(body, field, state.settings.gateway.max_batch_events)
    model, id_field = (Item, "item_id") if field == "items" else (User, "user_id")
    valid, results = _validate(model, entries, id_field, state.settings.events)
    if valid:
        catalog = state.stores.catalog
        upsert = catalog.upsert_items if field == "items" else catalog.upsert_users
        valid = await run_in_threadpool(_store_isolating, upsert, valid, results)
    document: dict[str, Any] = {
        "upserted": len(valid),
        "rejected": len(results) - len(valid),
        "results": results,
    }
    if not valid:
        document.update(error_body(f"invalid_{field}", f"no entry of {field} is valid", request))
        return JSONResponse(document, status_code=422)
    return JSONResponse(document)


def _body(reference: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{reference}"},
                    "example": example,
                }
            },
        }
    }


@router.put(
    "/v1/items",
    response_model=CatalogResponse,
    summary="Upsert items",
    description="Insert or replace items by `item_id`, up to the batch size per request. "
    "Valid entries are stored even when others are rejected.",
    responses=WRITE_RESPONSES,
    openapi_extra=_body(
        "ItemBatchIn",
        {"items": [{"item_id": "song-9", "title": "Blue in Green", "categories": ["jazz"]}]},
    ),
)
async def put_items(request: Request, state: State, key: IngestKey) -> JSONResponse:
    return await _upsert(request, state, "items")


@router.put(
    "/v1/users",
    response_model=CatalogResponse,
    summary="Upsert users",
    description="Insert or replace users by `user_id`, up to the batch size per request.",
    responses=WRITE_RESPONSES,
    openapi_extra=_body("UserBatchIn", {"users": [{"user_id": "u1", "attributes": {"age": 31}}]}),
)
async def put_users(request: Request, state: State, key: IngestKey) -> JSONResponse:
    return await _upsert(request, state, "users")


READ_RESPONSES = error_responses(401, 403, 404, 422, 429, 503)
CatalogId = Annotated[ExternalId, Path()]


@router.get(
    "/v1/items/{item_id:path}",
    response_model=ItemOut,
    summary="Get an item",
    responses=READ_RESPONSES,
)
async def get_item(state: State, key: ReadKey, item_id: CatalogId) -> Any:
    item = await run_in_threadpool(state.stores.catalog.get_item, item_id)
    if item is None:
        raise ApiError(404, "item_not_found", f"no item {item_id[:128]!r}")
    return ItemOut.model_validate(item.model_dump(mode="json"))


@router.get(
    "/v1/users/{user_id:path}",
    response_model=UserOut,
    summary="Get a user",
    responses=READ_RESPONSES,
)
async def get_user(state: State, key: ReadKey, user_id: CatalogId) -> Any:
    user = await run_in_threadpool(state.stores.catalog.get_user, user_id)
    if user is None:
        raise ApiError(404, "user_not_found", f"no user {user_id[:128]!r}")
    return UserOut.model_validate(user.model_dump(mode="json"))
