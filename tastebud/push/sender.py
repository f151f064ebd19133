"""Delivery to a push service with pywebpush: the payload encrypted for the subscription
(RFC 8291, aes128gcm) and signed with the server's VAPID key (RFC 8292).

A push service's answer decides what happens to the subscription: 201 delivered; 404 and
410 mean the subscription is gone for good (pruned); 429 and 5xx, or no answer, are worth
another try on a later run; any other 4xx is a message the service refuses (logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import requests
from pywebpush import WebPushException, webpush

from tastebud.config import PushSettings
from tastebud.push.vapid import signer
from tastebud.stores.push import PushSubscription, VapidKeys

Status = Literal["sent", "expired", "retry", "refused"]
EXPIRED = (404, 410)


@dataclass(frozen=True)
class Delivery:
    status: Status
    code: int | None = None
    detail: str = ""


class PushSender:
    """Sends to any number of subscriptions over one HTTP session."""

    def __init__(self, keys: VapidKeys, settings: PushSettings) -> None:
        self.vapid = signer(keys)
        self.settings = settings
        self.session = requests.Session()

    def send(
        self, subscription: PushSubscription, data: str, *, topic: str | None = None
    ) -> Delivery:
        headers = {"Urgency": "normal"}
        if topic:
            headers["Topic"] = topic[:32]
        try:
            response = webpush(
                subscription.info(),
                data=data,
                vapid_private_key=self.vapid,
                # A fresh dict each time: webpush writes the endpoint's origin into it (aud).
                vapid_claims={"sub": self.settings.vapid_subject},
                ttl=self.settings.ttl_seconds,
                timeout=self.settings.timeout_seconds,
                headers=headers,
                requests_session=self.session,
            )
        except WebPushException as error:
            code = error.response.status_code if error.response is not None else None
            detail = _reason(error)
            if code in EXPIRED:
                return Delivery("expired", code, detail)
            if code is None or code == 429 or code >= 500:
                return Delivery("retry", code, detail)
            return Delivery("refused", code, detail)
        except (requests.RequestException, OSError) as error:
            return Delivery("retry", None, f"{type(error).__name__}: {error}"[:300])
        return Delivery("sent", getattr(response, "status_code", None))

    def close(self) -> None:
        self.session.close()


def _reason(error: WebPushException) -> str:
    response = error.response
    if response is None:
        return str(error)[:300]
    return f"{response.status_code} {getattr(response, 'reason', '')} {response.text[:200]}".strip()
