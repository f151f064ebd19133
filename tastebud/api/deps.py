"""Dependencies shared by the routes, as ``Annotated`` aliases: the app's state, the caller's
API key (checked for a scope and rate-limited) and the JSON body read within limits."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tastebud.api.errors import ApiError
from tastebud.config import Settings
from tastebud.gateway.ingestion import EventGateway
from tastebud.gateway.keys import KeyAuthenticator
from tastebud.gateway.ratelimit import Limiter, retry_after_header
from tastebud.observability import bind_context
from tastebud.schemas import loads_json
from tastebud.stores import Stores
from tastebud.stores.keys import ApiKey


@dataclass
class AppState:
    """What the lifespan opens, one per worker process."""

    settings: Settings
    stores: Stores
    gateway: EventGateway
    keys: KeyAuthenticator
    limiter: Limiter  # shared through Redis when the online store is Redis


async def get_state(request: Request) -> AppState:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a hop
    that costs more than the lookup."""
    state: AppState = request.app.state.tastebud
    return state


State = Annotated[AppState, Depends(get_state)]

# How a route that ``require``s a key is documented in the OpenAPI schema (``api.openapi``).
SECURITY_SCHEMES = {
    "APIKeyHeader": APIKeyHeader(
        name="X-API-Key", auto_error=False, description="An API key (`tastebud keys create`)."
    ).model,
    "HTTPBearer": HTTPBearer(
        auto_error=False, description="`Authorization: Bearer <API key>`."
    ).model,
}

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="tastebud"'}


def require(scope: str) -> Callable[..., Awaitable[ApiKey | None]]:
    """A dependency that authenticates the caller, checks ``scope`` and takes a rate-limit
    token. With ``gateway.auth = false`` it only rate-limits, per client address."""

    async def dependency(request: Request) -> ApiKey | None:
        state: AppState = request.app.state.tastebud
        gateway = state.settings.gateway
        if not gateway.auth:
            client = request.client.host if request.client else "unknown"
            await _limit(
                state, f"addr:{client}", gateway.rate_limit_per_second, gateway.rate_limit_burst
            )
            return None
        secret = api_key_of(request)
        if not secret:
            raise ApiError(
                401,
                "missing_api_key",
                "send an API key as `Authorization: Bearer KEY` or `X-API-Key: KEY`",
                headers=UNAUTHORIZED,
            )
        key = state.keys.cached(secret)
        if key is None:
            key = await _look_up(request, state, secret)
        request.state.key_id = key.key_id
        request.state.key_scopes = key.scopes  # a route may allow more to some scopes
        bind_context(key_id=key.key_id)
        if not key.allows(scope):
            raise ApiError(
                403,
                "insufficient_scope",
                f"this route needs the {scope!r} scope; the key has {', '.join(key.scopes)}",
            )
        await _limit(
            state,
            f"key:{key.key_id}",
            key.rate_per_second or gateway.rate_limit_per_second,
            key.burst or gateway.rate_limit_burst,
        )
        return key

    dependency.required_scope = scope  # type: ignore[attr-defined]  # read by the OpenAPI
    return dependency


async def _look_up(request: Request, state: AppState, secret: str) -> ApiKey:
    """A key not in the cache, from the key store; 401 when unknown. A client whose keys
    keep failing (a scan, a leaked-key hunt) is slowed down per address before its lookups
    reach the key store."""
    gateway = state.settings.gateway
    client = request.client.host if request.client else "unknown"
    failures = f"authfail:{client}"
    wait = await state.limiter.peek(
        failures, gateway.auth_failures_per_second, gateway.auth_failure_burst
    )
    if wait > 0:
        raise _too_many(wait, "too many failed API-key checks from this address")
    key = None
    if not state.keys.known_unknown(secret):
        key = await run_in_threadpool(state.keys.authenticate, secret)
    if key is None:
        await state.limiter.take(
            failures, gateway.auth_failures_per_second, gateway.auth_failure_burst
        )
        raise ApiError(
            401,
            "invalid_api_key",
            "the API key is unknown or revoked",
            headers=UNAUTHORIZED,
        )
    return key


def api_key_of(request: Request) -> str | None:
    """The key in ``X-API-Key``, else in ``Authorization: Bearer``. Read from the headers
    here rather than through FastAPI's ``APIKeyHeader``/``HTTPBearer`` as sub-dependencies:
    solving those per request cost about a tenth of a cheap request (a precomputed list).
    The two schemes still document every route that requires a key (``SECURITY_SCHEMES``)."""
    headers = request.headers
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


async def _limit(state: AppState, bucket: str, rate: float, burst: float) -> None:
    wait = await state.limiter.take(bucket, rate, burst)
    if wait > 0:
        raise _too_many(wait, "too many requests")


def _too_many(wait: float, what: str) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"{what}; retry in {wait:.2f} s",
        headers={"Retry-After": retry_after_header(wait)},
    )


IngestKey = Annotated[ApiKey | None, Depends(require("ingest"))]
ReadKey = Annotated[ApiKey | None, Depends(require("read"))]


JSON_TYPES = ("application/json", "application/problem+json")


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, or a 4xx saying exactly what is wrong with it."""
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.split(";")[0].strip().lower()
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise ApiError(400, "empty_body", "the body is empty; send a JSON document")
    return decode_json(body)


def decode_json(body: bytes) -> Any:
    """``body`` as JSON under one rule for every route: UTF-8, no NaN or Infinity, each
    object marked when it names a key twice (``schemas.DuplicateKeys``), each integer too
    long to convert marked (``schemas.TooManyDigits``); else a 400."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            400, "invalid_utf8", f"the body is not valid UTF-8 (byte {error.start})"
        ) from None
    try:
        return loads_json(text, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "malformed_json",
            f"line {error.lineno} column {error.colno}: {error.msg}",
        ) from None
    except (ValueError, RecursionError) as error:
        raise ApiError(400, "malformed_json", str(error)[:200] or "invalid JSON") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
