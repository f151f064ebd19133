"""Web push state: the listeners' push subscriptions, the messages sent to them (for the
frequency cap and to never announce one item twice) and the server's VAPID key pair.

It lives in the configured database (``push.db`` beside the embedded event store, or tables
on PostgreSQL's pool), so every server worker, the ``push`` job and ``tastebud push`` see the
same subscriptions. One implementation, its SQL written once (``stores/sql.py``); the
contract suite (``tests/stores/test_push_store_contract.py``) runs it on both backends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tastebud.stores.errors import Closeable
from tastebud.stores.sql import SqlBackend

SCHEMA = """
CREATE TABLE IF NOT EXISTS push_subscriptions (
    endpoint TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    timezone TEXT,
    expires_at {real},
    created_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id);
CREATE TABLE IF NOT EXISTS push_sent (
    id {identity},
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    push_id TEXT NOT NULL,
    sent_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS push_sent_user ON push_sent (user_id, sent_at);
CREATE TABLE IF NOT EXISTS push_vapid (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    private_pem TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at {real} NOT NULL
);
"""

SUBSCRIPTION_COLUMNS = "endpoint, user_id, p256dh, auth, timezone, expires_at, created_at"
SENT_COLUMNS = "user_id, item_id, kind, push_id, sent_at"


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


class PushStore(Closeable):
    """Subscriptions, the sent-message log and the VAPID keys, in a SQL backend; closing the
    store closes the backend (a no-op for a PostgreSQL pool the event store owns)."""

    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend
        backend.apply_schema("push", backend.dialect.ddl(SCHEMA))

    def subscribe(self, subscription: PushSubscription, *, replaces: str | None = None) -> bool:
        """Store a subscription (replacing one with the same endpoint) and, in the same
        transaction, drop the one at ``replaces`` (``pushsubscriptionchange``). True when
        the endpoint was new."""
        s = subscription
        row = (s.endpoint, s.user_id, s.p256dh, s.auth, s.timezone, s.expires_at, s.created_at)
        with self.backend.write() as sql:
            if replaces is not None and replaces != s.endpoint:
                sql.execute("DELETE FROM push_subscriptions WHERE endpoint = ?", (replaces,))
            # Insert, else update: of two concurrent subscribes of one endpoint, exactly one
            # finds it new (PostgreSQL's insert waits for the other's to commit).
            new = sql.one(
                f"INSERT INTO push_subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (endpoint) DO NOTHING RETURNING 1",
                row,
            )
            if new is None:
                sql.execute(
                    "UPDATE push_subscriptions SET user_id = ?, p256dh = ?, auth = ?,"
                    " timezone = ?, expires_at = ?, created_at = ? WHERE endpoint = ?",
                    (*row[1:], s.endpoint),
                )
        return new is not None

    def unsubscribe(self, user_id: str, endpoint: str | None = None) -> int:
        """The user's opt-out: remove their subscription at ``endpoint`` (every one of
        theirs when None); returns how many were removed."""
        with self.backend.write() as sql:
            return int(
                sql.execute(
                    "DELETE FROM push_subscriptions WHERE user_id = ?"
                    + ("" if endpoint is None else " AND endpoint = ?"),
                    (user_id,) if endpoint is None else (user_id, endpoint),
                ).rowcount
            )

    def remove(self, endpoints: Sequence[str]) -> int:
        """Drop subscriptions the push service called expired (404/410), whoever's."""
        if not endpoints:
            return 0
        removed = 0
        with self.backend.write() as sql:
            for condition, params in self.backend.dialect.any_of(
                "endpoint", sorted(set(endpoints))
            ):
                removed += sql.execute(
                    f"DELETE FROM push_subscriptions WHERE {condition}", params
                ).rowcount
        return removed

    def get(self, endpoint: str) -> PushSubscription | None:
        with self.backend.read(short=False) as sql:
            row = sql.one(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE endpoint = ?",
                (endpoint,),
            )
        return None if row is None else PushSubscription(*row)

    def subscriptions(self, user_id: str) -> list[PushSubscription]:
        """The user's subscriptions, oldest first."""
        with self.backend.read(short=False) as sql:
            rows = sql.all(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE user_id = ?"
                " ORDER BY created_at, endpoint",
                (user_id,),
            )
        return [PushSubscription(*row) for row in rows]

    def subscribed_users(self, *, after: str | None = None, limit: int = 1000) -> list[str]:
        """Users with at least one subscription, ordered; pass the last one as ``after``."""
        with self.backend.read(short=False) as sql:
            rows = sql.all(
                "SELECT DISTINCT user_id FROM push_subscriptions WHERE user_id > ?"
                " ORDER BY user_id LIMIT ?",
                (after or "", limit),
            )
        return [row[0] for row in rows]

    def count(self) -> int:
        """How many subscriptions there are."""
        with self.backend.read(short=False) as sql:
            row = sql.one("SELECT count(*) FROM push_subscriptions")
        return int(row[0]) if row else 0

    def record_sent(self, sent: Sequence[SentPush]) -> None:
        if not sent:
            return
        with self.backend.write() as sql:
            sql.many(
                f"INSERT INTO push_sent ({SENT_COLUMNS}) VALUES (?,?,?,?,?)",
                [(s.user_id, s.item_id, s.kind, s.push_id, s.sent_at) for s in sent],
            )

    def sent_since(self, user_id: str, since: float) -> list[SentPush]:
        """The user's messages sent at or after ``since``, oldest first."""
        with self.backend.read(short=False) as sql:
            rows = sql.all(
                f"SELECT {SENT_COLUMNS} FROM push_sent WHERE user_id = ? AND sent_at >= ?"
                " ORDER BY sent_at, id",
                (user_id, since),
            )
        return [SentPush(*row) for row in rows]

    def prune_sent(self, older_than: float) -> int:
        """Forget messages sent before ``older_than``; returns how many."""
        with self.backend.write() as sql:
            return int(
                sql.execute("DELETE FROM push_sent WHERE sent_at < ?", (older_than,)).rowcount
            )

    def vapid_keys(self) -> VapidKeys | None:
        with self.backend.read(short=False) as sql:
            row = sql.one("SELECT private_pem, public_key, created_at FROM push_vapid WHERE id = 1")
        return None if row is None else VapidKeys(*row)

    def save_vapid_keys(self, keys: VapidKeys, *, replace: bool = False) -> bool:
        """Store the key pair; False if one exists and ``replace`` is off. Replacing drops
        every subscription: they were made for the old public key and no push service
        accepts messages signed with another."""
        with self.backend.write() as sql:
            # Serializes two `push keys` runs: the row lock, or the insert's key conflict.
            existing = sql.one(
                f"SELECT 1 FROM push_vapid WHERE id = 1{self.backend.dialect.for_update}"
            )
            if existing is not None and not replace:
                return False
            if existing is not None:
                sql.execute("DELETE FROM push_subscriptions")
            on_conflict = (
                "UPDATE SET private_pem = excluded.private_pem,"
                " public_key = excluded.public_key, created_at = excluded.created_at"
                if replace
                else "NOTHING"
            )
            inserted = sql.execute(
                "INSERT INTO push_vapid (id, private_pem, public_key, created_at)"
                f" VALUES (1, ?, ?, ?) ON CONFLICT (id) DO {on_conflict}",
                (keys.private_pem, keys.public_key, keys.created_at),
            ).rowcount
        return bool(inserted > 0)

    def close(self) -> None:
        self.backend.close()
