"""Web push state: the listeners' push subscriptions, the messages sent to them (for the
frequency cap and to never announce one item twice) and the server's VAPID key pair.

It lives in the configured database, beside the gateway's keys, so every server worker, the
``push`` job and ``tastebud push`` see the same subscriptions. Backends:
``embedded_push.py`` (SQLite) and ``postgres_push.py``; one contract suite
(``tests/stores/test_push_store_contract.py``) runs against both.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tastebud.stores.errors import Closeable


@dataclass(frozen=True)
class PushSubscription:
    """One browser's subscription (``PushSubscription.toJSON()``) and whose it is.

    The endpoint identifies it: a browser profile has one per app, so a second user signing
    in on the same device takes the subscription over."""

    endpoint: str
    user_id: str
    p256dh: str  # the browser's P-256 public key, base64url
    auth: str  # the 16-byte auth secret, base64url
    timezone: str | None = None  # the device's IANA zone, for quiet hours
    expires_at: float | None = None
    created_at: float = field(default_factory=time.time)

    def info(self) -> dict[str, Any]:
        """What pywebpush takes as ``subscription_info``."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "user_id": self.user_id,
            "timezone": self.timezone,
            "expires_at": self.expires_at,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class SentPush:
    """A message the push job delivered to at least one of a user's subscriptions."""

    user_id: str
    item_id: str
    kind: str  # "new" or "trending"
    push_id: str
    sent_at: float


@dataclass(frozen=True)
class VapidKeys:
    """The server's VAPID key pair: the private key as PEM (PKCS#8), the public key as the
    base64url uncompressed point browsers take as ``applicationServerKey``."""

    private_pem: str
    public_key: str
    created_at: float = field(default_factory=time.time)


class PushStore(Closeable, ABC):
    """Subscriptions, the sent-message log and the VAPID keys."""

    @abstractmethod
    def subscribe(self, subscription: PushSubscription, *, replaces: str | None = None) -> bool:
        """Store a subscription (replacing one with the same endpoint) and, in the same
        transaction, drop the one at ``replaces`` (``pushsubscriptionchange``). True when
        the endpoint was new."""

    @abstractmethod
    def unsubscribe(self, user_id: str, endpoint: str | None = None) -> int:
        """The user's opt-out: remove their subscription at ``endpoint`` (every one of
        theirs when None); returns how many were removed."""

    @abstractmethod
    def remove(self, endpoints: Sequence[str]) -> int:
        """Drop subscriptions the push service called expired (404/410), whoever's."""

    @abstractmethod
    def get(self, endpoint: str) -> PushSubscription | None: ...

    @abstractmethod
    def subscriptions(self, user_id: str) -> list[PushSubscription]:
        """The user's subscriptions, oldest first."""

    @abstractmethod
    def subscribed_users(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        """Users with at least one subscription, ordered; pass the last one as ``after``."""

    @abstractmethod
    def count(self) -> int:
        """How many subscriptions there are."""

    @abstractmethod
    def record_sent(self, sent: Sequence[SentPush]) -> None: ...

    @abstractmethod
    def sent_since(self, user_id: str, since: float) -> list[SentPush]:
        """The user's messages sent at or after ``since``, oldest first."""

    @abstractmethod
    def prune_sent(self, older_than: float) -> int:
        """Forget messages sent before ``older_than``; returns how many."""

    @abstractmethod
    def vapid_keys(self) -> VapidKeys | None: ...

    @abstractmethod
    def save_vapid_keys(self, keys: VapidKeys, *, replace: bool = False) -> bool:
        """Store the key pair; False if one exists and ``replace`` is off. Replacing drops
        every subscription: they were made for the old public key and no push service
        accepts messages signed with another."""
