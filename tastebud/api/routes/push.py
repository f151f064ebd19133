"""``POST /v1/push/subscriptions`` and ``DELETE /v1/push/subscriptions`` (ingest scope): a
listener's browser opts in to web push, or out.

The body names the user and carries the browser's ``PushSubscription.toJSON()``. API keys
belong to an app, not to a listener, so the key vouches for the ``user_id`` as it does for
events; a DELETE removes a subscription only when it is that user's. Opting out takes effect
at once: the ``push`` job reads each subscription again right before sending to it.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from tastebud.api.deps import IngestKey, State
from tastebud.api.errors import ApiError
from tastebud.api.schemas import error_responses
from tastebud.api.strict_json import StrictJsonRoute
from tastebud.config import check_timezone
from tastebud.schemas import ExternalId, StorableText
from tastebud.stores.push import PushSubscription

MAX_ENDPOINT = 2048
UserId = ExternalId
Endpoint = Annotated[StorableText, StringConstraints(min_length=9, max_length=MAX_ENDPOINT)]
Base64Url = Annotated[StorableText, StringConstraints(min_length=1, max_length=200)]


class SubscriptionKeys(BaseModel):
    p256dh: Base64Url = Field(description="The browser's P-256 public key (base64url).")
    auth: Base64Url = Field(description="The 16-byte authentication secret (base64url).")


class BrowserSubscription(BaseModel):
    """What ``PushSubscription.toJSON()`` gives in the browser."""

    endpoint: Endpoint = Field(description="The push service URL (https).")
    expiration_time: float | None = Field(
        default=None, alias="expirationTime", ge=0, description="Epoch milliseconds."
    )
    keys: SubscriptionKeys


class SubscribeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u1",
                    "subscription": {
                        "endpoint": "https://push.example.net/send/abc123",
                        "expirationTime": None,
                        "keys": {
                            "p256dh": "BNHh2ZsP77dmKXY4u9SopiZ3DpRZX7rXMBMyyPMIrDIZuBP2mGd"
                            "gaxwN45MO9DwmZAmm--eN1A5LdcYfNriMI7M",
                            "auth": "V3uLfpGY8gChZFG78cfjyg",
                        },
                    },
                    "timezone": "Europe/Paris",
                }
            ]
        },
    )

    user_id: UserId
    subscription: BrowserSubscription
    timezone: str | None = Field(
        default=None, max_length=64, description="The device's IANA zone, for quiet hours."
    )
    replaces: Endpoint | None = Field(
        default=None,
        description="The endpoint this one replaces (after `pushsubscriptionchange`).",
    )


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    endpoint: Endpoint | None = Field(
        default=None, description="The subscription to remove; omit to remove all the user's."
    )


class SubscriptionOut(BaseModel):
    user_id: str
    endpoint: str
    created: bool = Field(description="False when the endpoint was already subscribed.")


class UnsubscribeOut(BaseModel):
    user_id: str
    deleted: int


router = APIRouter(tags=["push"], route_class=StrictJsonRoute)


def _decode(value: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_subscription", f"{field} is not base64url") from None


def check_subscription(body: SubscribeIn) -> PushSubscription:
    """The subscription to store, or a 422 that says what is wrong with it."""
    sent = body.subscription
    for name, endpoint in (("subscription.endpoint", sent.endpoint), ("replaces", body.replaces)):
        if endpoint is not None:
            parts = urlsplit(endpoint)
            if parts.scheme != "https" or not parts.hostname:
                raise ApiError(422, "invalid_subscription", f"{name} must be an https:// URL")
    point = _decode(sent.keys.p256dh, "keys.p256dh")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise ApiError(
            422, "invalid_subscription", "keys.p256dh is not a P-256 public key"
        ) from None
    if len(_decode(sent.keys.auth, "keys.auth")) != 16:
        raise ApiError(422, "invalid_subscription", "keys.auth must hold 16 bytes")
    if body.timezone is not None:
        try:
            check_timezone(body.timezone)
        except ValueError as error:
            raise ApiError(422, "invalid_timezone", str(error)) from None
    return PushSubscription(
        endpoint=sent.endpoint,
        user_id=body.user_id,
        p256dh=sent.keys.p256dh,
        auth=sent.keys.auth,
        timezone=body.timezone,
        expires_at=sent.expiration_time / 1000 if sent.expiration_time else None,
        created_at=time.time(),
    )


@router.post(
    "/v1/push/subscriptions",
    status_code=201,
    response_model=SubscriptionOut,
    summary="Opt a browser in to web push",
    description="201 for a new subscription, 200 when the endpoint was subscribed already "
    "(it is updated: another user may have signed in on that browser).",
    responses={
        200: {"model": SubscriptionOut, "description": "The endpoint was subscribed already."},
        **error_responses(400, 401, 403, 413, 415, 422, 429, 503),
    },
)
async def subscribe(state: State, key: IngestKey, body: SubscribeIn) -> JSONResponse:
    subscription = check_subscription(body)
    created = await run_in_threadpool(
        state.stores.database.push.subscribe, subscription, replaces=body.replaces
    )
    return JSONResponse(
        {"user_id": subscription.user_id, "endpoint": subscription.endpoint, "created": created},
        status_code=201 if created else 200,
    )


@router.delete(
    "/v1/push/subscriptions",
    response_model=UnsubscribeOut,
    summary="Opt a browser (or every browser of a user) out of web push",
    description="Idempotent: removing a subscription that is gone answers `deleted: 0`.",
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503),
)
async def unsubscribe(state: State, key: IngestKey, body: UnsubscribeIn) -> dict[str, Any]:
    deleted = await run_in_threadpool(
        state.stores.database.push.unsubscribe, body.user_id, body.endpoint
    )
    return {"user_id": body.user_id, "deleted": deleted}
